//! `GET /metrics` (on its own address): counters move by exactly the events performed, and
//! the gauges say what is active and open now.

mod common;

use common::{CHROME, expect_active, expect_ended, spawn_app_with};
use reqwest::StatusCode;

/// The value of the sample `name` (labels included) in an exposition, 0 if absent.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn counters_move_by_exactly_the_events_performed() {
    let app = spawn_app_with(&["--policy", "deny-new"]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let router = solotab::startup::metrics_router(app.state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let scrape = || async {
        let reply = reqwest::get(&metrics_url).await.unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
        reply.text().await.unwrap()
    };
    let before = scrape().await;
    assert_eq!(sample(&before, "solotab_active_tabs"), 0.0);

    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let (first, cookie) = app.login_with_device("ann", CHROME).await;
    let mut channel = app.channel_for(&first).await;
    expect_active(&mut channel).await;
    let during = scrape().await;
    assert_eq!(sample(&during, "solotab_active_tabs"), 1.0);
    assert_eq!(sample(&during, "solotab_push_channels"), 1.0);

    // Refused twice by deny-new, then a takeover by "Use here" from the same browser.
    for _ in 0..2 {
        let refused = app
            .post_json(
                "/api/login",
                serde_json::json!({"username": "ann", "password": common::PASSWORD}),
            )
            .await;
        refused.assert_error(StatusCode::CONFLICT, "account_in_use");
    }
    let taken = app
        .send(
            app.client
                .post(app.url("/api/use-here"))
                .header("cookie", &cookie)
                .header("origin", app.origin())
                .json(&serde_json::json!({"takeover": true})),
        )
        .await;
    assert_eq!(taken.status, StatusCode::OK);
    expect_ended(&mut channel, "superseded").await;
    let second = taken.body["uid"].as_str().unwrap().to_owned();
    // Three refused requests: two superseded, one unknown.
    for uid in [&first, &first] {
        app.get_with_uid("/api/me", uid).await;
    }
    app.get_with_uid("/api/me", "6f1c1f44-3b1e-4b8e-9a53-2f6f1d1b9e10")
        .await;
    let out = app
        .call(reqwest::Method::POST, "/api/logout", Some(&second))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);

    let after = scrape().await;
    let moved = |name: &str| sample(&after, name) - sample(&before, name);
    assert_eq!(moved(r#"solotab_logins_total{method="password"}"#), 1.0);
    assert_eq!(moved(r#"solotab_logins_total{method="use_here"}"#), 1.0);
    assert_eq!(moved("solotab_takeovers_total"), 1.0);
    assert_eq!(
        moved(r#"solotab_rejections_total{code="account_in_use"}"#),
        2.0
    );
    assert_eq!(moved(r#"solotab_rejections_total{code="superseded"}"#), 2.0);
    assert_eq!(
        moved(r#"solotab_rejections_total{code="unknown_uid"}"#),
        1.0
    );
    assert_eq!(moved("solotab_logouts_total"), 1.0);
    assert_eq!(sample(&after, "solotab_active_tabs"), 0.0);
    assert_eq!(sample(&after, "solotab_push_channels"), 0.0);
}

#[tokio::test]
async fn metrics_are_not_on_the_public_site() {
    let app = spawn_app_with(&[]).await;
    let reply = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
    let text = reply.text().await.unwrap();
    assert!(!text.contains("solotab_logins_total"));
}

#[tokio::test]
async fn expiries_and_revocations_are_counted_once_each() {
    let app = spawn_app_with(&[
        "--policy",
        "max-tabs",
        "--max-tabs",
        "3",
        "--absolute-timeout",
        "1s",
    ])
    .await;
    let scrape = || {
        let text = app.state.metrics.render(0, 0);
        (
            sample(&text, "solotab_expiries_total"),
            sample(&text, "solotab_revocations_total"),
        )
    };
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let first = app.login_as("ann", CHROME).await;
    let _second = app.login_as("ann", CHROME).await;
    let third = app.login_as("ann", CHROME).await;
    // "Everywhere else" from the third: two revocations.
    let request = app
        .client
        .post(app.url("/api/sessions/sign-out"))
        .header("x-tab-uid", &third)
        .json(&serde_json::json!({"everywhere_else": true}));
    assert_eq!(app.send(request).await.status, StatusCode::OK);
    assert_eq!(scrape(), (0.0, 2.0));
    // The third expires: refused three times, counted once. (The revoked first is refused
    // as revoked, not counted as an expiry.)
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    for _ in 0..3 {
        app.get_with_uid("/api/me", &third)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "expired");
    }
    app.get_with_uid("/api/me", &first)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "revoked");
    assert_eq!(scrape(), (1.0, 2.0));
}
