//! Observe mode (`--mode observe`, or an account's own with `set-mode`): what enforcement
//! would reject is served, told nothing, and counted; an enforced account is unchanged.

mod common;

use common::{CHROME, FIREFOX, PASSWORD, TestApp, expect_active, next_seen, spawn_app_with};
use reqwest::StatusCode;
use serde_json::json;
use solotab::store::Mode;

fn observed(app: &TestApp, code: &str) -> f64 {
    let text = app.state.metrics.render(0, 0);
    let name = format!("solotab_observed_total{{code=\"{code}\"}}");
    text.lines()
        .find(|line| line.starts_with(&name))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn observe_mode_serves_a_superseded_tab_and_counts_it_without_telling_it() {
    let app = spawn_app_with(&["--mode", "observe"]).await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let first = app.login_as("ann", CHROME).await;
    let mut channel = app.channel_for(&first).await;
    expect_active(&mut channel).await;
    let second = app.login_as("ann", FIREFOX).await;
    // Enforcement would have stopped the first tab: it is served, and its channel is quiet.
    for uid in [&first, &second, &first] {
        assert_eq!(
            app.get_with_uid("/api/premium", uid).await.status,
            StatusCode::OK
        );
    }
    assert!(
        next_seen(&mut channel, std::time::Duration::from_millis(300))
            .await
            .is_none(),
        "an observed tab is told nothing"
    );
    // The channel's quiet end is counted too.
    assert_eq!(observed(&app, "superseded"), 3.0);
    // A UID nobody knows has no account to be served as.
    app.get_with_uid("/api/me", "6f1c1f44-3b1e-4b8e-9a53-2f6f1d1b9e10")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unknown_uid");
}

#[tokio::test]
async fn an_accounts_own_mode_overrides_the_servers_either_way() {
    let app = spawn_app_with(&["--mode", "observe"]).await;
    for name in ["ann", "bob"] {
        assert_eq!(app.register(name).await.status, StatusCode::CREATED);
    }
    let bob = app.state.accounts.find("bob").await.unwrap().unwrap();
    app.state
        .accounts
        .set_mode(bob.id, Some(Mode::Enforce))
        .await
        .unwrap();
    let first = app.login_as("bob", CHROME).await;
    app.login_as("bob", FIREFOX).await;
    app.get_with_uid("/api/me", &first)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "superseded");

    let enforced = spawn_app_with(&[]).await;
    assert_eq!(enforced.register("ann").await.status, StatusCode::CREATED);
    let ann = enforced.state.accounts.find("ann").await.unwrap().unwrap();
    enforced
        .state
        .accounts
        .set_mode(ann.id, Some(Mode::Observe))
        .await
        .unwrap();
    let first = enforced.login_as("ann", CHROME).await;
    enforced.login_as("ann", FIREFOX).await;
    assert_eq!(
        enforced.get_with_uid("/api/me", &first).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn observe_mode_lets_a_deny_new_login_in_and_counts_the_refusal() {
    let app = spawn_app_with(&["--mode", "observe", "--policy", "deny-new"]).await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let first = app.login_as("ann", CHROME).await;
    let second = app
        .post_json(
            "/api/login",
            json!({"username": "ann", "password": PASSWORD}),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{:?}", second.body);
    assert_eq!(observed(&app, "account_in_use"), 1.0);
    assert_eq!(
        app.get_with_uid("/api/me", &first).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn observe_mode_serves_a_timed_out_tab() {
    let app = spawn_app_with(&["--mode", "observe", "--absolute-timeout", "1s"]).await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let uid = app.login_as("ann", CHROME).await;
    let mut channel = app.channel_for(&uid).await;
    expect_active(&mut channel).await;
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert_eq!(
        app.get_with_uid("/api/me", &uid).await.status,
        StatusCode::OK
    );
    assert!(
        next_seen(&mut channel, std::time::Duration::from_millis(200))
            .await
            .is_none()
    );
    assert!(
        observed(&app, "expired") >= 2.0,
        "the channel's and the request's"
    );
}

#[tokio::test]
async fn set_mode_on_the_command_line() {
    let db = common::TaskDb::with_account("Ann").await;
    let done = db.run(&["set-mode", "ann", "observe"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(String::from_utf8_lossy(&done.stdout).contains("Ann: observe"));
    assert_eq!(db.find("ann").await.mode, Some(Mode::Observe));
    assert!(db.run(&["set-mode", "ann", "default"]).status.success());
    assert_eq!(db.find("ann").await.mode, None);
    assert!(!db.run(&["set-mode", "ann", "loose"]).status.success());
}
