//! "Use here": the device cookie a login sets, `GET /api/device` and `POST /api/use-here`.

mod common;

use common::{CHROME, PHONE, TestApp, app_with, expect_active, expect_ended};
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn device(app: &TestApp, cookie: Option<&str>) -> common::Reply {
    let mut request = app.client.get(app.url("/api/device"));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    app.send(request).await
}

async fn use_here(app: &TestApp, cookie: Option<&str>, origin: Option<&str>) -> common::Reply {
    let mut request = app
        .client
        .post(app.url("/api/use-here"))
        .header("user-agent", CHROME)
        .json(&json!({}));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    app.send(request).await
}

#[tokio::test]
async fn a_login_sets_an_http_only_strict_device_cookie_for_the_api_only() {
    let app = app_with("ann").await;
    let reply = app
        .send(
            app.client
                .post(app.url("/api/login"))
                .json(&json!({"username": "ann", "password": common::PASSWORD})),
        )
        .await;
    let set = reply.headers[SET_COOKIE].to_str().unwrap();
    let value = set
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("solotab_device=")
        .unwrap();
    assert_eq!(value.len(), 64, "256 bits, hex");
    assert!(value.bytes().all(|b| b.is_ascii_hexdigit()));
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/api",
        "Max-Age=2592000",
    ] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    assert!(!set.contains("Secure"), "plain http here");
    assert!(!set.contains(reply.body["uid"].as_str().unwrap()));

    // Served over https (as a proxy says), the cookie is Secure.
    let secure = app
        .send(
            app.client
                .post(app.url("/api/login"))
                .header("origin", "https://solotab.example")
                .json(&json!({"username": "ann", "password": common::PASSWORD})),
        )
        .await;
    assert!(
        secure.headers[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Secure")
    );
}

#[tokio::test]
async fn the_device_says_whose_it_is_and_whether_a_tab_is_active() {
    let app = app_with("Ann").await;
    device(&app, None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "no_device");
    device(&app, Some("solotab_device=nonsense"))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "no_device");
    device(&app, Some(&format!("solotab_device={}", "0".repeat(64))))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "no_device");

    let (uid, cookie) = app.login_with_device("ann", CHROME).await;
    let reply = device(&app, Some(&format!("other=1; {cookie}"))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!({"username": "Ann", "active_elsewhere": true})
    );

    // Logging out ends this browser's device and clears the cookie.
    let out = app
        .send(
            app.client
                .post(app.url("/api/logout"))
                .header("x-tab-uid", &uid)
                .header(COOKIE, &cookie),
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let cleared = out.headers[SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("solotab_device=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    device(&app, Some(&cookie))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "no_device");
}

#[tokio::test]
async fn use_here_issues_a_fresh_uid_that_supersedes_the_active_tab_and_pushes_it() {
    let app = app_with("ann").await;
    let (old, cookie) = app.login_with_device("ann", CHROME).await;
    let mut old_channel = app.channel_for(&old).await;
    expect_active(&mut old_channel).await;

    let reply = use_here(&app, Some(&cookie), Some(&app.origin())).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let new = reply.body["uid"].as_str().unwrap();
    assert!(common::is_canonical_uuid_v4(new));
    assert_ne!(new, old);
    assert_eq!(reply.body["username"], "ann");
    assert!(common::is_rfc3339_millis_utc(
        reply.body["issued_at"].as_str().unwrap()
    ));

    expect_ended(&mut old_channel, "superseded").await;
    assert_eq!(
        app.get_with_uid("/api/premium", new).await.status,
        StatusCode::OK
    );
    app.get_with_uid("/api/premium", &old)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "superseded");
    // The device stays this browser's: it can take over again later.
    assert_eq!(device(&app, Some(&cookie)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn use_here_needs_this_sites_origin_a_device_and_a_json_body() {
    let app = app_with("ann").await;
    let (uid, cookie) = app.login_with_device("ann", CHROME).await;
    use_here(&app, Some(&cookie), Some("http://evil.example"))
        .await
        .assert_error(StatusCode::FORBIDDEN, "cross_site");
    use_here(&app, Some(&cookie), None)
        .await
        .assert_error(StatusCode::FORBIDDEN, "cross_site");
    use_here(&app, None, Some(&app.origin()))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "no_device");
    let form = app
        .send(
            app.client
                .post(app.url("/api/use-here"))
                .header(COOKIE, &cookie)
                .header("origin", app.origin())
                .header("content-type", "application/x-www-form-urlencoded")
                .body("a=b"),
        )
        .await;
    form.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    // None of that took anything over.
    assert_eq!(
        app.get_with_uid("/api/me", &uid).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_cookie_alone_authorises_nothing_but_use_here() {
    let app = app_with("ann").await;
    let (_uid, cookie) = app.login_with_device("ann", CHROME).await;
    for (method, path) in [
        (Method::GET, "/api/premium"),
        (Method::GET, "/api/me"),
        (Method::POST, "/api/logout"),
    ] {
        let reply = app
            .send(
                app.client
                    .request(method, app.url(path))
                    .header(COOKIE, &cookie),
            )
            .await;
        reply.assert_error(StatusCode::UNAUTHORIZED, "missing_uid");
    }
}

#[tokio::test]
async fn a_login_from_another_browser_ends_the_first_browsers_device() {
    let app = app_with("ann").await;
    let (_laptop_uid, laptop) = app.login_with_device("ann", CHROME).await;
    let (_phone_uid, phone) = app.login_with_device("ann", PHONE).await;
    device(&app, Some(&laptop))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "no_device");
    use_here(&app, Some(&laptop), Some(&app.origin()))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "no_device");
    assert_eq!(device(&app, Some(&phone)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn under_max_tabs_each_browser_keeps_its_device_up_to_the_limit() {
    let app = common::spawn_app_with(&["--policy", "max-tabs", "--max-tabs", "2"]).await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let (_, laptop) = app.login_with_device("ann", CHROME).await;
    let (_, phone) = app.login_with_device("ann", PHONE).await;
    assert_eq!(device(&app, Some(&laptop)).await.status, StatusCode::OK);
    assert_eq!(device(&app, Some(&phone)).await.status, StatusCode::OK);

    // The laptop signs in again: its new device replaces its own, the phone keeps its.
    let login = app
        .client
        .post(app.url("/api/login"))
        .header("user-agent", CHROME)
        .header(COOKIE, &laptop)
        .json(&json!({"username": "ann", "password": common::PASSWORD}));
    let again = app.send(login).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    let laptop_again = again.headers[SET_COOKIE].to_str().unwrap();
    let laptop_again = laptop_again.split(';').next().unwrap().to_owned();
    device(&app, Some(&laptop))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "no_device");
    assert_eq!(
        device(&app, Some(&laptop_again)).await.status,
        StatusCode::OK
    );
    assert_eq!(device(&app, Some(&phone)).await.status, StatusCode::OK);

    // A third browser: the browser signed in longest ago (the phone) must type the
    // password again; so does its tab, the oldest, which is superseded.
    let (_, tablet) = app.login_with_device("ann", common::FIREFOX).await;
    device(&app, Some(&phone))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "no_device");
    assert_eq!(
        device(&app, Some(&laptop_again)).await.status,
        StatusCode::OK
    );
    assert_eq!(device(&app, Some(&tablet)).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn use_here_racing_a_login_from_another_browser_never_beats_it() {
    let app = app_with("ann").await;
    let origin = app.origin();
    for round in 0..40u64 {
        let (_laptop_uid, laptop) = app.login_with_device("ann", CHROME).await;
        // The phone's login ends the laptop's device, then claims. Whatever the order, the
        // phone's tab must end up the active one: a "Use here" that would win had to run
        // before the login began, and then the login supersedes it.
        let (phone, taken_over) = tokio::join!(app.login_with_device("ann", PHONE), async {
            // Spread over the phone's password check, so that some rounds land the
            // "Use here" right where the phone's login ends the device.
            tokio::time::sleep(std::time::Duration::from_micros(round * 1_500)).await;
            use_here(&app, Some(&laptop), Some(&origin)).await
        },);
        assert!(
            taken_over.status == StatusCode::OK || taken_over.code() == "no_device",
            "{:?}",
            taken_over.body
        );
        assert_eq!(
            app.get_with_uid("/api/me", &phone.0).await.status,
            StatusCode::OK,
            "the other browser's login came last, so it is the active tab"
        );
    }
}

#[tokio::test]
async fn hostile_device_cookies_are_no_device_never_a_server_error() {
    let app = app_with("ann").await;
    let (_uid, cookie) = app.login_with_device("ann", CHROME).await;
    let token = cookie.split('=').nth(1).unwrap().to_owned();
    let hostile = [
        format!("solotab_device={}", token.to_uppercase()),
        format!("solotab_device={}", &token[..63]),
        format!("solotab_device={token}0"),
        format!("solotab_device=\"{token}\""),
        format!("solotab_device={}", "é".repeat(40)),
        format!("solotab_device={}", "a".repeat(6000)),
        format!("solotab_device=garbage; solotab_device={token}"),
        "solotab_device".to_owned(),
        ";;;=;=".to_owned(),
    ];
    for bad in &hostile {
        device(&app, Some(bad))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "no_device");
        use_here(&app, Some(bad), Some(&app.origin()))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "no_device");
    }
    // Repeated with the valid one first: the browser's own cookie is the first one it sends.
    let repeated = format!("{cookie}; solotab_device=garbage");
    assert_eq!(device(&app, Some(&repeated)).await.status, StatusCode::OK);
}
