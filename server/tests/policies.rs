//! Policies over HTTP. `--policy deny-new`: a login while a tab is active is refused with
//! 409 `account_in_use` (never counted as a failed login) unless it asks to take over.
//! `--policy max-tabs`: up to N tabs, the oldest pushed out beyond them. "Use here" follows
//! the same rules, and an account's own policy overrides the server's.

mod common;

use common::{
    CHROME, FIREFOX, PASSWORD, PHONE, TestApp, expect_active, expect_ended, spawn_app_with,
};
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
    let db = common::TaskDb::with_account("Ann").await;
    let set = |args: &[&str]| db.run(args);
    let done = set(&["set-policy", "ann", "deny-new"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(String::from_utf8_lossy(&done.stdout).contains("Ann: deny-new"));
    let find = || async { db.find("ann").await.policy };
    assert_eq!(find().await, Some(Policy::DenyNew));
    let max_tabs = set(&["set-policy", "ann", "max-tabs", "--max-tabs", "3"]);
    assert!(String::from_utf8_lossy(&max_tabs.stdout).contains("Ann: max-tabs 3"));
    assert_eq!(find().await, Some(Policy::MaxTabs(3)));
    // max-tabs names its limit; no other policy takes one.
    let no_limit = set(&["set-policy", "ann", "max-tabs"]);
    assert!(!no_limit.status.success());
    assert!(String::from_utf8_lossy(&no_limit.stderr).contains("--max-tabs"));
    let stray = set(&["set-policy", "ann", "deny-new", "--max-tabs", "2"]);
    assert!(!stray.status.success());
    assert_eq!(
        find().await,
        Some(Policy::MaxTabs(3)),
        "a refused command changes nothing"
    );
    assert!(set(&["set-policy", "ANN", "default"]).status.success());
    assert_eq!(find().await, None);
    let missing = set(&["set-policy", "nobody", "deny-new"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no account is named \"nobody\""));
}

#[tokio::test]
async fn max_tabs_keeps_n_tabs_and_pushes_the_oldest_out_beyond_them() {
    let app = spawn_app_with(&["--policy", "max-tabs", "--max-tabs", "2"]).await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let first = app.login_as("ann", CHROME).await;
    let mut first_channel = app.channel_for(&first).await;
    expect_active(&mut first_channel).await;
    let second = app.login_as("ann", FIREFOX).await;
    let mut second_channel = app.channel_for(&second).await;
    expect_active(&mut second_channel).await;
    for uid in [&first, &second] {
        assert_eq!(
            app.get_with_uid("/api/me", uid).await.status,
            StatusCode::OK
        );
    }
    // The third login pushes the oldest out, told by whom; the second stays.
    let third = app.login_as("ann", "third browser").await;
    let ended = expect_ended(&mut first_channel, "superseded").await;
    assert_eq!(ended["user_agent"], "third browser");
    app.get_with_uid("/api/me", &first)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "superseded");
    for uid in [&second, &third] {
        assert_eq!(
            app.get_with_uid("/api/me", uid).await.status,
            StatusCode::OK
        );
    }
    // A tab that logs out frees its place: the next login ends no one.
    let out = app
        .call(reqwest::Method::POST, "/api/logout", Some(&second))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    expect_ended(&mut second_channel, "logged_out").await;
    let fourth = app.login_as("ann", CHROME).await;
    for uid in [&third, &fourth] {
        assert_eq!(
            app.get_with_uid("/api/me", uid).await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn two_hundred_racing_logins_leave_exactly_n_tabs_active() {
    let app = spawn_app_with(&["--policy", "max-tabs", "--max-tabs", "3"]).await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let logins: Vec<_> = (0..200)
        .map(|_| {
            let request = app
                .client
                .post(app.url("/api/login"))
                .json(&json!({"username": "ann", "password": PASSWORD}));
            async move {
                request
                    .send()
                    .await
                    .unwrap()
                    .json::<serde_json::Value>()
                    .await
                    .unwrap()
            }
        })
        .collect();
    let uids: Vec<String> = futures_util::future::join_all(logins)
        .await
        .iter()
        .map(|body| {
            body["uid"]
                .as_str()
                .expect("every login succeeds")
                .to_owned()
        })
        .collect();
    let mut active = 0;
    for uid in &uids {
        active += usize::from(app.get_with_uid("/api/me", uid).await.status == StatusCode::OK);
    }
    assert_eq!(active, 3, "exactly three of 200 racing logins stay active");
}

#[test]
fn the_max_tabs_policy_needs_its_limit_and_no_other_takes_one() {
    let start = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--db", "/nonexistent/never-opened.db"])
            .args(args)
            .env_remove("SOLOTAB_POLICY")
            .env_remove("SOLOTAB_MAX_TABS")
            .output()
            .unwrap()
    };
    let no_limit = start(&["--policy", "max-tabs"]);
    assert!(!no_limit.status.success());
    assert!(String::from_utf8_lossy(&no_limit.stderr).contains("--max-tabs"));
    let stray = start(&["--max-tabs", "2"]);
    assert!(!stray.status.success());
    let stderr = String::from_utf8_lossy(&stray.stderr);
    assert!(
        stderr.contains("applies only with the max-tabs policy"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_timed_out_tab_is_listed_as_timed_out_and_the_next_sign_in_ends_it() {
    let app = spawn_app_with(&[
        "--idle-timeout",
        "2s",
        "--policy",
        "max-tabs",
        "--max-tabs",
        "2",
    ])
    .await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let idle = app.login_as("ann", CHROME).await;
    let busy = app.login_as("ann", FIREFOX).await;
    let mut channel = app.channel_for(&idle).await;
    expect_active(&mut channel).await;
    // The busy tab is used while the idle one times out.
    let keep_busy = async {
        for _ in 0..3 {
            tokio::time::sleep(std::time::Duration::from_millis(900)).await;
            let me = app.get_with_uid("/api/me", &busy).await;
            assert_eq!(me.status, StatusCode::OK);
        }
    };
    let ((), ended) = tokio::join!(keep_busy, expect_ended(&mut channel, "expired"));
    assert_eq!(ended["idle_secs"], 2, "{ended}");
    let tabs = app.get_with_uid("/api/sessions", &busy).await.body["tabs"].clone();
    let tabs = tabs.as_array().unwrap();
    assert_eq!(tabs.len(), 2, "{tabs:?}");
    let timed_out = tabs[0]["timed_out_at"]
        .as_str()
        .expect("the idle tab timed out");
    assert!(common::is_rfc3339_millis_utc(timed_out));
    assert!(timed_out > tabs[0]["last_seen"].as_str().unwrap());
    assert_eq!(tabs[1]["this_tab"], true);
    assert!(tabs[1].get("timed_out_at").is_none(), "{tabs:?}");

    // The next sign-in ends it as expired: it holds no place (both others stay) and the
    // sign-in is no takeover.
    let third = app.login_as("ann", PHONE).await;
    let page = app.get_with_uid("/api/sessions", &third).await.body;
    assert_eq!(page["tabs"].as_array().unwrap().len(), 2, "{page}");
    assert_eq!(page["events"][0]["kind"], "login");
    assert_eq!(
        app.get_with_uid("/api/me", &busy).await.status,
        StatusCode::OK
    );
    let refused = app.get_with_uid("/api/me", &idle).await;
    refused.assert_error(StatusCode::UNAUTHORIZED, "expired");
}

#[tokio::test]
async fn a_tab_closed_before_it_timed_out_is_in_the_history_once_the_next_sign_in_ends_it() {
    let app = spawn_app_with(&["--idle-timeout", "1s"]).await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    // Signed in, then closed: no request, no channel, so nothing refuses it.
    let closed = app.login_as("ann", CHROME).await;
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let again = app.login_as("ann", FIREFOX).await;
    let kinds = app.event_kinds(&again).await;
    assert_eq!(kinds, ["login", "expired", "login"]);
    // Once: its own refusal later adds nothing.
    app.get_with_uid("/api/me", &closed)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "expired");
    let events = app.get_with_uid("/api/sessions", &again).await.body["events"].clone();
    assert_eq!(events.as_array().unwrap().len(), 3, "{events}");
}

#[tokio::test]
async fn a_tab_idle_past_the_idle_timeout_is_pushed_expired_and_requests_keep_it_alive() {
    let app = spawn_app_with(&["--idle-timeout", "2s"]).await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let uid = app.login_as("ann", CHROME).await;
    let mut channel = app.channel_for(&uid).await;
    expect_active(&mut channel).await;
    // A request every 0.8 s for 3.2 s, longer than the timeout: the tab stays.
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        assert_eq!(
            app.get_with_uid("/api/me", &uid).await.status,
            StatusCode::OK
        );
    }
    // Then nothing (the open channel is not use): told at once, over the channel.
    let ended = expect_ended(&mut channel, "expired").await;
    assert_eq!(ended["idle_secs"], 2, "{ended}");
    assert!(
        ended["message"]
            .as_str()
            .unwrap()
            .contains("without activity"),
        "{ended}"
    );
    let refused = app.get_with_uid("/api/me", &uid).await;
    refused.assert_error(StatusCode::UNAUTHORIZED, "expired");
    assert_eq!(refused.body["idle_secs"], 2);
    // A new login is active again, and the account's history says the tab expired.
    let again = app.login_as("ann", CHROME).await;
    assert_eq!(
        app.get_with_uid("/api/me", &again).await.status,
        StatusCode::OK
    );
    let kinds = app.event_kinds(&again).await;
    // The timed-out tab ended as expired before the new login: not a takeover.
    assert_eq!(kinds, ["login", "expired", "login"]);
}
