//! Brute force without locking the owner out: failed logins are throttled per client and per
//! account before any hash is computed, and the owner's browser is exempt from the latter.

mod common;

use std::net::IpAddr;

use common::{PASSWORD, Reply, TestApp, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, RETRY_AFTER};
use serde_json::json;

/// A client whose connections come from `ip` (any 127.0.0.0/8 address reaches the server).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn login(
    app: &TestApp,
    client: &reqwest::Client,
    password: &str,
    cookie: Option<&str>,
) -> Reply {
    let mut request = client
        .post(app.url("/api/login"))
        .json(&json!({"username": "ann", "password": password}));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    app.send(request).await
}

#[tokio::test]
async fn two_hundred_wrong_passwords_from_one_client_cost_a_handful_of_hashes() {
    let app = spawn_app().await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let attacker = client_from("127.0.0.2");
    let hashes_before = app.state.passwords.computed();
    let mut refused = Vec::new();
    for _ in 0..200 {
        let reply = login(&app, &attacker, "wrong password", None).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            refused.push(reply);
        } else {
            reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
        }
    }
    let hashes = app.state.passwords.computed() - hashes_before;
    assert_eq!(hashes, 5, "only the first five guesses were hashed");
    assert_eq!(refused.len(), 195);
    let throttled = &refused[0];
    throttled.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    let retry = throttled.body["retry_after_secs"].as_u64().unwrap();
    assert!((14 * 60..=15 * 60).contains(&retry), "{retry}");
    assert_eq!(
        throttled.headers[RETRY_AFTER].to_str().unwrap(),
        retry.to_string()
    );
}

#[tokio::test]
async fn the_owner_still_signs_in_while_guesses_from_elsewhere_throttle_the_account() {
    let app = spawn_app().await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let owner = client_from("127.0.0.3");
    let signed_in = login(&app, &owner, PASSWORD, None).await;
    assert_eq!(signed_in.status, StatusCode::OK);
    let device = signed_in.headers["set-cookie"].to_str().unwrap();
    let device = device.split(';').next().unwrap().to_owned();

    // An attacker guesses from another address until the account is throttled.
    let attacker = client_from("127.0.0.2");
    for _ in 0..5 {
        login(&app, &attacker, "guess guess", None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    // Even the right password, from a third browser, now waits...
    let stranger = client_from("127.0.0.4");
    login(&app, &stranger, PASSWORD, None)
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    // ...but the owner's browser, which signed in last, is not locked out.
    let again = login(&app, &owner, PASSWORD, Some(&device)).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    // And the attacker's address is held back for every account.
    assert_eq!(app.register("bob").await.status, StatusCode::CREATED);
    let other = app
        .send(
            attacker
                .post(app.url("/api/login"))
                .json(&json!({"username": "bob", "password": PASSWORD})),
        )
        .await;
    other.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
}

#[tokio::test]
async fn a_successful_login_clears_the_accounts_earlier_failures() {
    let app = spawn_app().await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    // Typos from several places, then the right password: the slate is clean.
    for ip in ["127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8"] {
        login(&app, &client_from(ip), "typo typo", None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    assert_eq!(
        login(&app, &client_from("127.0.0.9"), PASSWORD, None)
            .await
            .status,
        StatusCode::OK
    );
    // Four more typos do not block it: without the success in between they would have.
    for ip in ["127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"] {
        login(&app, &client_from(ip), "typo typo", None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
}

#[tokio::test]
async fn registrations_are_limited_per_client_and_passwords_may_not_be_the_username() {
    let app = spawn_app_with(&["--max-registrations-per-hour", "3"]).await;
    let busy = client_from("127.0.0.2");
    let register = |client: reqwest::Client, name: &'static str, password: &'static str| {
        let request = client
            .post(app.url("/api/register"))
            .json(&json!({"username": name, "password": password}));
        app.send(request)
    };
    register(busy.clone(), "ann.lee", "ANN.LEE")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(
        register(busy.clone(), "ann", PASSWORD).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        register(busy.clone(), "ann", PASSWORD).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        register(busy.clone(), "bob", PASSWORD).await.status,
        StatusCode::CREATED
    );
    register(busy.clone(), "cyd", PASSWORD)
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    let elsewhere = client_from("127.0.0.3");
    assert_eq!(
        register(elsewhere, "cyd", PASSWORD).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_is_throttled_on_its_own() {
    // 127.0.0.1 plays the load balancer; 127.0.0.5 is a client that reaches the server
    // directly and forges the header.
    let app = spawn_app_with(&[
        "--trusted-proxies",
        "127.0.0.1",
        "--max-registrations-per-hour",
        "2",
    ])
    .await;
    let proxy = client_from("127.0.0.1");
    let register = |client: &reqwest::Client, forwarded_for: &str, name: &str| {
        let request = client
            .post(app.url("/api/register"))
            .header("x-forwarded-for", forwarded_for)
            .json(&json!({"username": name, "password": PASSWORD}));
        app.send(request)
    };
    for name in ["ann", "bob"] {
        let reply = register(&proxy, "198.51.100.1", name).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }
    register(&proxy, "198.51.100.1", "cyd")
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    // Another client behind the same proxy is not held back by the first...
    let other = register(&proxy, "198.51.100.2", "cyd").await;
    assert_eq!(other.status, StatusCode::CREATED, "{:?}", other.body);
    // ...and a direct client cannot borrow a throttled client's address, or escape its own
    // count by naming another.
    let forger = client_from("127.0.0.5");
    for (forged, name) in [("198.51.100.9", "dee"), ("198.51.100.10", "eve")] {
        let reply = register(&forger, forged, name).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }
    register(&forger, "198.51.100.11", "fay")
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
}
