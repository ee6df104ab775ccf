//! `--policy deny-new` over HTTP: a login while a tab is active is refused with 409
//! `account_in_use` (never counted as a failed login) unless it asks to take over; "Use here"
//! follows the same rule.

mod common;

use common::{CHROME, FIREFOX, PASSWORD, TestApp, expect_active, expect_ended, spawn_app_with};
use reqwest::StatusCode;
use serde_json::json;

async fn deny_new_app() -> TestApp {
    let app = spawn_app_with(&["--policy", "deny-new", "--max-login-failures", "3"]).await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    app
}

async fn login(app: &TestApp, user_agent: &str, takeover: bool) -> common::Reply {
    let mut body = json!({"username": "ann", "password": PASSWORD});
    if takeover {
        body["takeover"] = json!(true);
    }
    let request = app
        .client
        .post(app.url("/api/login"))
        .header("user-agent", user_agent)
        .json(&body);
    app.send(request).await
}

#[tokio::test]
async fn a_login_while_a_tab_is_active_is_refused_until_it_asks_to_take_over() {
    let app = deny_new_app().await;
    let first = app.login_as("ann", CHROME).await;
    let issued_at = app.get_with_uid("/api/me", &first).await.body["issued_at"].clone();
    let mut channel = app.channel_for(&first).await;
    expect_active(&mut channel).await;

    let refused = login(&app, FIREFOX, false).await;
    refused.assert_error(StatusCode::CONFLICT, "account_in_use");
    assert_eq!(refused.body["active_since"], issued_at);
    assert!(
        refused.headers.get("set-cookie").is_none(),
        "a refused login changes nothing"
    );
    // The active tab is untouched, and not told anything.
    assert_eq!(
        app.get_with_uid("/api/me", &first).await.status,
        StatusCode::OK
    );

    // More refusals than the failure limit: none counts as a failed login.
    for _ in 0..5 {
        login(&app, FIREFOX, false)
            .await
            .assert_error(StatusCode::CONFLICT, "account_in_use");
    }
    let taken = login(&app, FIREFOX, true).await;
    assert_eq!(taken.status, StatusCode::OK, "{:?}", taken.body);
    let ended = expect_ended(&mut channel, "superseded").await;
    assert_eq!(ended["user_agent"], FIREFOX);
    app.get_with_uid("/api/me", &first)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "superseded");

    // Once that tab logs out, a plain login is let in again.
    let second = taken.body["uid"].as_str().unwrap();
    let out = app
        .call(reqwest::Method::POST, "/api/logout", Some(second))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(login(&app, CHROME, false).await.status, StatusCode::OK);
}

#[tokio::test]
async fn use_here_follows_the_same_policy() {
    let app = deny_new_app().await;
    let (uid, cookie) = app.login_with_device("ann", CHROME).await;
    let use_here = |takeover: bool| {
        app.client
            .post(app.url("/api/use-here"))
            .header("cookie", &cookie)
            .header("origin", app.origin())
            .json(&json!({"takeover": takeover}))
    };
    // Another tab of the same browser, while the first is active.
    let refused = app.send(use_here(false)).await;
    refused.assert_error(StatusCode::CONFLICT, "account_in_use");
    assert_eq!(
        app.get_with_uid("/api/me", &uid).await.status,
        StatusCode::OK
    );
    let taken = app.send(use_here(true)).await;
    assert_eq!(taken.status, StatusCode::OK, "{:?}", taken.body);
    app.get_with_uid("/api/me", &uid)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "superseded");
}

#[tokio::test]
async fn a_tab_past_the_absolute_timeout_is_pushed_expired_and_refused() {
    let app = spawn_app_with(&["--absolute-timeout", "1s"]).await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let uid = app.login_as("ann", CHROME).await;
    let mut channel = app.channel_for(&uid).await;
    expect_active(&mut channel).await;
    assert_eq!(
        app.get_with_uid("/api/me", &uid).await.status,
        StatusCode::OK
    );
    // Told at the end of its lifetime, over the channel, without asking.
    let ended = expect_ended(&mut channel, "expired").await;
    assert!(
        ended["message"].as_str().unwrap().contains("expired at"),
        "{ended}"
    );
    app.get_with_uid("/api/me", &uid)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "expired");
    // A new login starts a new lifetime.
    let again = app.login_as("ann", CHROME).await;
    assert_eq!(
        app.get_with_uid("/api/me", &again).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn under_latest_wins_takeover_changes_nothing_and_needs_not_be_sent() {
    let app = spawn_app_with(&[]).await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let first = app.login_as("ann", CHROME).await;
    assert_eq!(login(&app, FIREFOX, false).await.status, StatusCode::OK);
    app.get_with_uid("/api/me", &first)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "superseded");
    assert_eq!(login(&app, CHROME, true).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_accounts_own_policy_overrides_the_servers() {
    use solotab::registry::Policy;
    let app = spawn_app_with(&[]).await; // latest-wins
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    assert_eq!(app.register("bob").await.status, StatusCode::CREATED);
    let ann = app.state.accounts.find("ann").await.unwrap().unwrap();
    assert!(
        app.state
            .accounts
            .set_policy(ann.id, Some(Policy::DenyNew))
            .await
            .unwrap()
    );
    // Ann's second login is refused; Bob's supersedes, as the server says.
    let first = app.login_as("ann", CHROME).await;
    login(&app, FIREFOX, false)
        .await
        .assert_error(StatusCode::CONFLICT, "account_in_use");
    assert_eq!(
        app.get_with_uid("/api/me", &first).await.status,
        StatusCode::OK
    );
    let bob = app.login_as("bob", CHROME).await;
    let bob_again = app
        .post_json(
            "/api/login",
            json!({"username": "bob", "password": PASSWORD}),
        )
        .await;
    assert_eq!(bob_again.status, StatusCode::OK);
    app.get_with_uid("/api/me", &bob)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "superseded");
}

#[tokio::test]
async fn set_policy_on_the_command_line_gives_an_account_its_own() {
    use solotab::registry::Policy;
    use solotab::store::{AccountStore, SqliteStore};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("solotab.db");
    {
        let store = SqliteStore::open(&db).unwrap();
        let at = solotab::time::UnixMillis::now();
        store.create("Ann", "not-a-real-hash", at).await.unwrap();
    }
    let set = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--db", db.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    };
    let done = set(&["set-policy", "ann", "deny-new"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(String::from_utf8_lossy(&done.stdout).contains("Ann: deny-new"));
    let find = || async {
        let store = SqliteStore::open(&db).unwrap();
        store.find("ann").await.unwrap().unwrap().policy
    };
    assert_eq!(find().await, Some(Policy::DenyNew));
    assert!(set(&["set-policy", "ANN", "default"]).status.success());
    assert_eq!(find().await, None);
    let missing = set(&["set-policy", "nobody", "deny-new"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no account is named \"nobody\""));
}
