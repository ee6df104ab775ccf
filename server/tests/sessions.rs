//! "Your sessions": `GET /api/sessions` lists the account's active tabs and its history;
//! `POST /api/sessions/sign-out` signs one other tab out, or one other browser (its tabs
//! too), or every other tab and browser.
//! A password change signs out every other tab too.

mod common;

use common::{
    CHROME, FIREFOX, PASSWORD, PHONE, TestApp, expect_active, expect_ended, spawn_app_with,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn two_tabs_app() -> TestApp {
    let app = spawn_app_with(&["--policy", "max-tabs", "--max-tabs", "3"]).await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    app
}

async fn sign_out(app: &TestApp, uid: &str, body: Value) -> common::Reply {
    let request = app
        .client
        .post(app.url("/api/sessions/sign-out"))
        .header("x-tab-uid", uid)
        .json(&body);
    app.send(request).await
}

#[tokio::test]
async fn the_sessions_page_lists_every_tab_and_signs_one_other_out() {
    let app = two_tabs_app().await;
    let laptop = app.login_as("ann", CHROME).await;
    let phone = app.login_as("ann", PHONE).await;
    let mut laptop_channel = app.channel_for(&laptop).await;
    expect_active(&mut laptop_channel).await;

    let sessions = app.get_with_uid("/api/sessions", &phone).await;
    assert_eq!(sessions.status, StatusCode::OK);
    let tabs = sessions.body["tabs"].as_array().unwrap();
    assert_eq!(tabs.len(), 2, "{tabs:?}");
    assert_eq!(tabs[0]["user_agent"], CHROME, "oldest sign-in first");
    assert_eq!(tabs[0]["this_tab"], false);
    assert_eq!(tabs[1]["user_agent"], PHONE);
    assert_eq!(tabs[1]["this_tab"], true);
    assert_eq!(tabs[0]["ip"], "127.0.0.1");
    for tab in tabs {
        assert!(common::is_rfc3339_millis_utc(
            tab["signed_in_at"].as_str().unwrap()
        ));
        assert!(common::is_rfc3339_millis_utc(
            tab["last_seen"].as_str().unwrap()
        ));
        // An id names a tab; it is not its UID and does not work as one.
        let id = tab["id"].as_str().unwrap();
        assert!(id != laptop && id != phone);
        app.get_with_uid("/api/me", id)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "malformed_uid");
    }

    // The phone signs the laptop out: told at once, and refused from then on.
    let laptop_id = tabs[0]["id"].as_str().unwrap().to_owned();
    let done = sign_out(&app, &phone, json!({"tab": laptop_id})).await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(done.body["tabs"], 1);
    let ended = expect_ended(&mut laptop_channel, "revoked").await;
    assert!(
        ended["message"]
            .as_str()
            .unwrap()
            .contains("signed out from elsewhere")
    );
    app.get_with_uid("/api/me", &laptop)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "revoked");
    assert_eq!(
        app.get_with_uid("/api/me", &phone).await.status,
        StatusCode::OK
    );

    // What cannot be signed out is said so, and changes nothing.
    sign_out(&app, &phone, json!({"tab": laptop_id}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let phone_id = app.get_with_uid("/api/sessions", &phone).await.body["tabs"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sign_out(&app, &phone, json!({"tab": phone_id}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    sign_out(&app, &phone, json!({"tab": "not-an-id"}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    sign_out(&app, &phone, json!({}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    sign_out(
        &app,
        &phone,
        json!({"tab": phone_id, "everywhere_else": true}),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(
        app.get_with_uid("/api/me", &phone).await.status,
        StatusCode::OK
    );
    // Another account's tab cannot be named.
    assert_eq!(app.register("bob").await.status, StatusCode::CREATED);
    let bob = app.login_as("bob", FIREFOX).await;
    let bob_id = app.get_with_uid("/api/sessions", &bob).await.body["tabs"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sign_out(&app, &phone, json!({"tab": bob_id}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        app.get_with_uid("/api/me", &bob).await.status,
        StatusCode::OK
    );
}

/// `GET /api/sessions` from a browser holding `cookie`.
async fn sessions_from(app: &TestApp, uid: &str, cookie: &str) -> Value {
    let request = app
        .client
        .get(app.url("/api/sessions"))
        .header("x-tab-uid", uid)
        .header("cookie", cookie);
    let reply = app.send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body
}

async fn sign_out_from(app: &TestApp, uid: &str, cookie: &str, body: Value) -> common::Reply {
    let request = app
        .client
        .post(app.url("/api/sessions/sign-out"))
        .header("x-tab-uid", uid)
        .header("cookie", cookie)
        .json(&body);
    app.send(request).await
}

#[tokio::test]
async fn the_sessions_page_lists_signed_in_browsers_and_signs_one_out_with_its_tabs() {
    let app = two_tabs_app().await;
    let (laptop, laptop_cookie) = app.login_with_device("ann", CHROME).await;
    let (phone, phone_cookie) = app.login_with_device("ann", PHONE).await;
    // The laptop opens a second tab with "Use here": the same browser, two tabs.
    let use_here = app
        .client
        .post(app.url("/api/use-here"))
        .header("user-agent", CHROME)
        .header("origin", app.origin())
        .header("cookie", &laptop_cookie)
        .json(&json!({}));
    let second = app.send(use_here).await;
    assert_eq!(second.status, StatusCode::OK, "{:?}", second.body);
    let laptop_second = second.body["uid"].as_str().unwrap().to_owned();
    let mut channels = Vec::new();
    for uid in [&laptop, &laptop_second] {
        let mut channel = app.channel_for(uid).await;
        expect_active(&mut channel).await;
        channels.push(channel);
    }

    let page = sessions_from(&app, &phone, &phone_cookie).await;
    let browsers = page["browsers"].as_array().unwrap();
    assert_eq!(browsers.len(), 2, "{browsers:?}");
    // The laptop's "Use here" is the latest sign-in.
    assert_eq!(browsers[0]["user_agent"], CHROME);
    assert_eq!(browsers[0]["this_browser"], false);
    assert_eq!(browsers[1]["user_agent"], PHONE);
    assert_eq!(browsers[1]["this_browser"], true);
    assert_eq!(browsers[0]["ip"], "127.0.0.1");
    for browser in browsers {
        for field in ["signed_in_at", "last_sign_in", "expires_at"] {
            assert!(
                common::is_rfc3339_millis_utc(browser[field].as_str().unwrap()),
                "{field}"
            );
        }
        // An id names a browser; it is not its cookie.
        let id = browser["id"].as_str().unwrap();
        assert!(!laptop_cookie.contains(id) && !phone_cookie.contains(id));
    }
    assert!(browsers[0]["last_sign_in"].as_str() > browsers[0]["signed_in_at"].as_str());
    let laptop_id = browsers[0]["id"].as_str().unwrap().to_owned();
    let phone_id = browsers[1]["id"].as_str().unwrap().to_owned();

    // The phone signs the laptop out: both its tabs are told at once, and its "Use here"
    // is gone.
    let done = sign_out_from(&app, &phone, &phone_cookie, json!({"browser": laptop_id})).await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(done.body["tabs"], 2);
    for (channel, uid) in channels.iter_mut().zip([&laptop, &laptop_second]) {
        expect_ended(channel, "revoked").await;
        app.get_with_uid("/api/me", uid)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "revoked");
    }
    app.device_of(&laptop_cookie)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "no_device");
    assert_eq!(app.device_of(&phone_cookie).await.status, StatusCode::OK);
    let page = sessions_from(&app, &phone, &phone_cookie).await;
    assert_eq!(page["browsers"].as_array().unwrap().len(), 1);
    // The refused requests above come after it in the history.
    assert!(
        app.event_kinds(&phone)
            .await
            .contains(&"revoked".to_owned())
    );

    // What cannot be signed out is said so, and changes nothing.
    sign_out_from(&app, &phone, &phone_cookie, json!({"browser": laptop_id}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    sign_out_from(&app, &phone, &phone_cookie, json!({"browser": phone_id}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    sign_out_from(&app, &phone, &phone_cookie, json!({"browser": "nope"}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    sign_out_from(
        &app,
        &phone,
        &phone_cookie,
        json!({"browser": phone_id, "everywhere_else": true}),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(app.register("bob").await.status, StatusCode::CREATED);
    let (bob, bob_cookie) = app.login_with_device("bob", FIREFOX).await;
    let bob_id = sessions_from(&app, &bob, &bob_cookie).await["browsers"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sign_out_from(&app, &phone, &phone_cookie, json!({"browser": bob_id}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(app.device_of(&bob_cookie).await.status, StatusCode::OK);
    assert_eq!(
        app.get_with_uid("/api/me", &bob).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get_with_uid("/api/me", &phone).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn everywhere_else_signs_out_every_other_tab_and_browser() {
    let app = two_tabs_app().await;
    let (laptop, laptop_cookie) = app.login_with_device("ann", CHROME).await;
    let tablet = app.login_as("ann", FIREFOX).await;
    let (phone, old_cookie) = app.login_with_device("ann", PHONE).await;
    let done = sign_out(&app, &phone, json!({"everywhere_else": true})).await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(done.body["tabs"], 2);
    for uid in [&laptop, &tablet] {
        app.get_with_uid("/api/me", uid)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "revoked");
    }
    assert_eq!(
        app.get_with_uid("/api/me", &phone).await.status,
        StatusCode::OK
    );
    // This browser has a fresh device cookie; the one before no longer works.
    let fresh = done
        .headers
        .get(reqwest::header::SET_COOKIE)
        .expect("a fresh device cookie");
    let fresh = fresh
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    app.device_of(&old_cookie)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "no_device");
    // Every other browser (under max-tabs 3, each kept its own) has lost "Use here".
    app.device_of(&laptop_cookie)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "no_device");
    assert_eq!(app.device_of(&fresh).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_history_says_what_happened_newest_first_and_a_stale_tab_once() {
    let app = spawn_app_with(&[]).await; // latest-wins
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let first = app.login_as("ann", CHROME).await;
    let second = app.login_as("ann", FIREFOX).await; // takes over
    for _ in 0..3 {
        // The superseded tab keeps asking: recorded once.
        let stale = app
            .client
            .get(app.url("/api/me"))
            .header("x-tab-uid", &first)
            .header("user-agent", CHROME);
        app.send(stale)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "superseded");
    }
    let change = app
        .client
        .post(app.url("/api/password"))
        .header("x-tab-uid", &second)
        .json(&json!({"current": PASSWORD, "new": "a brand new passphrase"}));
    assert_eq!(app.send(change).await.status, StatusCode::NO_CONTENT);
    let seen = app.event_kinds(&second).await;
    assert_eq!(
        seen,
        ["password_changed", "rejected_stale", "takeover", "login"]
    );
    let events = app.get_with_uid("/api/sessions", &second).await.body["events"].clone();
    assert_eq!(
        events[2]["user_agent"], FIREFOX,
        "who took over, and from where"
    );
    assert_eq!(events[2]["ip"], "127.0.0.1");
    assert_eq!(events[1]["user_agent"], CHROME, "the stale tab's browser");

    let out = app
        .call(reqwest::Method::POST, "/api/logout", Some(&second))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let again = app
        .login_as_with_password("ann", CHROME, "a brand new passphrase")
        .await;
    assert_eq!(
        app.event_kinds(&again).await[..3],
        ["login", "logout", "password_changed"]
    );
}

#[tokio::test]
async fn a_password_change_signs_every_other_tab_out_at_once() {
    let app = two_tabs_app().await;
    let laptop = app.login_as("ann", CHROME).await;
    let phone = app.login_as("ann", PHONE).await;
    let mut laptop_channel = app.channel_for(&laptop).await;
    expect_active(&mut laptop_channel).await;
    let change = app
        .client
        .post(app.url("/api/password"))
        .header("x-tab-uid", &phone)
        .json(&json!({"current": PASSWORD, "new": "a brand new passphrase"}));
    assert_eq!(app.send(change).await.status, StatusCode::NO_CONTENT);
    expect_ended(&mut laptop_channel, "revoked").await;
    assert_eq!(
        app.get_with_uid("/api/me", &phone).await.status,
        StatusCode::OK
    );
}

async fn take_back(app: &TestApp, password: &str, new_password: &str) -> common::Reply {
    let request = app.client.post(app.url("/api/not-me")).json(&json!({
        "username": "ANN",
        "password": password,
        "new_password": new_password,
    }));
    app.send(request).await
}

#[tokio::test]
async fn that_wasnt_me_takes_the_account_back_and_locks_the_intruder_out() {
    let app = spawn_app_with(&["--max-login-failures", "3"]).await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let owner = app.login_as("ann", CHROME).await;
    let (intruder, intruder_cookie) = app.login_with_device("ann", FIREFOX).await;
    app.get_with_uid("/api/me", &owner)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "superseded");
    let mut intruder_channel = app.channel_for(&intruder).await;
    expect_active(&mut intruder_channel).await;

    // A wrong password changes nothing, and counts as a failed login.
    take_back(&app, "not the password at all", "a brand new passphrase")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    // A new password that breaks the rules is refused before anything is checked.
    take_back(&app, PASSWORD, "short")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(
        app.get_with_uid("/api/me", &intruder).await.status,
        StatusCode::OK
    );

    let taken = take_back(&app, PASSWORD, "a brand new passphrase").await;
    assert_eq!(taken.status, StatusCode::OK, "{:?}", taken.body);
    let back = taken.body["uid"].as_str().unwrap().to_owned();
    assert!(
        taken.headers.get(reqwest::header::SET_COOKIE).is_some(),
        "a fresh device cookie"
    );
    // The intruder is pushed out as revoked, loses "Use here", and the old password.
    expect_ended(&mut intruder_channel, "revoked").await;
    app.get_with_uid("/api/me", &intruder)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "revoked");
    app.device_of(&intruder_cookie)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "no_device");
    let old = app
        .post_json(
            "/api/login",
            json!({"username": "ann", "password": PASSWORD}),
        )
        .await;
    old.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    // The owner's new tab works, and the history says what happened.
    assert_eq!(
        app.get_with_uid("/api/me", &back).await.status,
        StatusCode::OK
    );
    let mut seen = app.event_kinds(&back).await;
    seen.retain(|kind| kind != "rejected_stale"); // the two turned-away tabs
    assert_eq!(seen, ["taken_back", "takeover", "login"]);
}
