//! `POST /api/password`: the active tab changes its account's password.

mod common;

use common::{CHROME, PASSWORD, TestApp, app_with};
use reqwest::StatusCode;
use serde_json::json;

const NEW: &str = "a much better passphrase";

async fn change(
    app: &TestApp,
    uid: Option<&str>,
    cookie: &str,
    current: &str,
    new: &str,
) -> common::Reply {
    let mut request = app
        .client
        .post(app.url("/api/password"))
        .header("cookie", cookie)
        .json(&json!({"current": current, "new": new}));
    if let Some(uid) = uid {
        request = request.header("x-tab-uid", uid);
    }
    app.send(request).await
}

async fn login(app: &TestApp, password: &str) -> common::Reply {
    app.post_json(
        "/api/login",
        json!({"username": "ann", "password": password}),
    )
    .await
}

#[tokio::test]
async fn the_active_tab_changes_the_password_and_the_old_one_stops_working() {
    let app = app_with("ann").await;
    let (uid, cookie) = app.login_with_device("ann", CHROME).await;
    let changed = change(&app, Some(&uid), &cookie, PASSWORD, NEW).await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{:?}", changed.body);
    // This tab stays active; this browser gets a fresh device cookie, the old one ends.
    assert_eq!(
        app.get_with_uid("/api/me", &uid).await.status,
        StatusCode::OK
    );
    let fresh = changed.headers[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap();
    let fresh = fresh.split(';').next().unwrap().to_owned();
    assert_ne!(fresh, cookie);
    app.device_of(&cookie)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "no_device");
    assert_eq!(app.device_of(&fresh).await.status, StatusCode::OK);
    // The old password is refused, the new one signs in.
    login(&app, PASSWORD)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(login(&app, NEW).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_current_password_or_a_bad_new_one_changes_nothing() {
    let app = app_with("ann").await;
    let (uid, cookie) = app.login_with_device("ann", CHROME).await;
    change(&app, Some(&uid), &cookie, "not the password", NEW)
        .await
        .assert_error(StatusCode::FORBIDDEN, "wrong_password");
    for bad in ["short", "ann", "password123"] {
        change(&app, Some(&uid), &cookie, PASSWORD, bad)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    }
    // Without the tab's UID there is no change at all.
    change(&app, None, &cookie, PASSWORD, NEW)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "missing_uid");
    // The tab is still active, the password still the old one.
    assert_eq!(
        app.get_with_uid("/api/me", &uid).await.status,
        StatusCode::OK
    );
    assert_eq!(login(&app, PASSWORD).await.status, StatusCode::OK);
}

#[tokio::test]
async fn guessing_the_current_password_from_a_tab_is_throttled_like_logins() {
    let app = app_with("ann").await;
    let uid = app.login_as("ann", CHROME).await;
    // No device cookie here: a stolen UID used from elsewhere.
    for _ in 0..5 {
        change(&app, Some(&uid), "", "guess guess", NEW)
            .await
            .assert_error(StatusCode::FORBIDDEN, "wrong_password");
    }
    change(&app, Some(&uid), "", PASSWORD, NEW)
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
}
