//! The public HTTP contract (README, "HTTP API"), line by line, against the real router on
//! an ephemeral port.

mod common;

use common::{
    CHROME, FIREFOX, PASSWORD, TestApp, app_with, is_canonical_uuid_v4, is_rfc3339_millis_utc,
    spawn_app, spawn_app_with,
};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::json;
use solotab::registry::MAX_ENDED_PER_ACCOUNT;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let reply = app.send(app.client.get(app.url("/healthz"))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({"status": "ok"}));
}

#[tokio::test]
async fn the_api_describes_itself_in_openapi_3_1_without_a_uid() {
    let app = spawn_app().await;
    let reply = app.send(app.client.get(app.url("/api/openapi.json"))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["openapi"], "3.1.0");
    let login = &reply.body["paths"]["/api/login"]["post"]["responses"];
    for status in ["200", "400", "401", "408", "413", "415", "429", "503"] {
        assert!(
            login[status].is_object(),
            "login's {status} is not described"
        );
    }
}

#[tokio::test]
async fn register_creates_an_account_shown_as_typed_and_trimmed() {
    let app = spawn_app().await;
    let reply = app
        .post_json(
            "/api/register",
            json!({"username": "  Ann.Lee_1 ", "password": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body, json!({"username": "Ann.Lee_1"}));
    assert!(
        reply.body.get("uid").is_none(),
        "registering does not log in"
    );
}

#[tokio::test]
async fn register_refuses_a_taken_username_whatever_its_case() {
    let app = app_with("Ann").await;
    app.register("ann")
        .await
        .assert_error(StatusCode::CONFLICT, "username_taken");
    app.register(" ANN ")
        .await
        .assert_error(StatusCode::CONFLICT, "username_taken");
}

#[tokio::test]
async fn register_says_what_is_wrong_with_the_input() {
    let app = spawn_app().await;
    let cases = [
        ("ab", PASSWORD, "3 to 32"),
        (&"a".repeat(33), PASSWORD, "3 to 32"),
        ("ann smith", PASSWORD, "letters, digits"),
        ("ann/../x", PASSWORD, "letters, digits"),
        ("émile", PASSWORD, "letters, digits"),
        ("ann", "short", "at least 8"),
        ("ann", &"x".repeat(129), "at most 128"),
        ("ann", "Password123", "most common"),
        ("ann", "qwertyuiop", "most common"),
        ("password12345", "password12345", "username"),
    ];
    for (username, password, says) in cases {
        let reply = app
            .post_json(
                "/api/register",
                json!({"username": username, "password": password}),
            )
            .await;
        reply.assert_error(StatusCode::BAD_REQUEST, "invalid_input");
        let message = reply.body["message"].as_str().unwrap();
        assert!(
            message.contains(says),
            "{username:?}/{password:?}: {message}"
        );
    }
}

#[tokio::test]
async fn login_issues_a_fresh_uid_with_its_time() {
    let app = app_with("Ann").await;
    let reply = app
        .post_json(
            "/api/login",
            json!({"username": "aNN", "password": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let uid = reply.body["uid"].as_str().unwrap();
    assert!(is_canonical_uuid_v4(uid), "{uid}");
    assert_eq!(reply.body["username"], "Ann", "shown as registered");
    assert!(
        is_rfc3339_millis_utc(reply.body["issued_at"].as_str().unwrap()),
        "{:?}",
        reply.body
    );
    let again = app
        .post_json(
            "/api/login",
            json!({"username": "Ann", "password": PASSWORD}),
        )
        .await;
    assert_ne!(
        again.body["uid"], reply.body["uid"],
        "every login gets a new UID"
    );
}

#[tokio::test]
async fn login_answers_unknown_users_and_wrong_passwords_alike() {
    let app = app_with("ann").await;
    let wrong = app
        .post_json(
            "/api/login",
            json!({"username": "ann", "password": "wrong password"}),
        )
        .await;
    let unknown = app
        .post_json(
            "/api/login",
            json!({"username": "nobody", "password": PASSWORD}),
        )
        .await;
    let impossible = app
        .post_json("/api/login", json!({"username": "a b", "password": "x"}))
        .await;
    for reply in [&wrong, &unknown, &impossible] {
        reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.body, impossible.body);
    app.post_json("/api/login", json!({"username": " ", "password": ""}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
}

#[tokio::test]
async fn the_active_tab_reads_me_and_premium() {
    let app = app_with("ann").await;
    let uid = app.login_as("ann", CHROME).await;
    let me = app.get_with_uid("/api/me", &uid).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["username"], "ann");
    assert!(is_rfc3339_millis_utc(
        me.body["issued_at"].as_str().unwrap()
    ));
    let premium = app.get_with_uid("/api/premium", &uid).await;
    assert_eq!(premium.status, StatusCode::OK);
    assert!(!premium.body["title"].as_str().unwrap().is_empty());
    assert!(!premium.body["body"].as_str().unwrap().is_empty());
    assert!(is_rfc3339_millis_utc(
        premium.body["served_at"].as_str().unwrap()
    ));
}

/// Logs `ann` in through a request carrying `X-Forwarded-For: forwarded_for`.
async fn login_forwarded(app: &TestApp, forwarded_for: &str) -> String {
    let request = app
        .client
        .post(app.url("/api/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"username": "ann", "password": PASSWORD}));
    let reply = app.send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["uid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_address_shown_comes_from_x_forwarded_for_only_behind_a_trusted_proxy() {
    // The test client connects from 127.0.0.1: here a trusted load balancer.
    let behind = spawn_app_with(&["--trusted-proxies", "127.0.0.0/8"]).await;
    behind.register("ann").await;
    let first = login_forwarded(&behind, "198.51.100.1").await;
    // The client wrote "6.6.6.6"; the proxy appended the address it saw.
    login_forwarded(&behind, "6.6.6.6, 203.0.113.9").await;
    let reply = behind.get_with_uid("/api/me", &first).await;
    reply.assert_error(StatusCode::UNAUTHORIZED, "superseded");
    assert_eq!(reply.body["ip"], "203.0.113.9");

    // Without --trusted-proxies the header is the client's word, and ignored.
    let direct = spawn_app().await;
    direct.register("ann").await;
    let first = login_forwarded(&direct, "198.51.100.1").await;
    login_forwarded(&direct, "203.0.113.9").await;
    let reply = direct.get_with_uid("/api/me", &first).await;
    reply.assert_error(StatusCode::UNAUTHORIZED, "superseded");
    assert_eq!(reply.body["ip"], "127.0.0.1");
}

#[tokio::test]
async fn a_failing_store_answers_503_store_unavailable_changes_nothing_and_recovers_alone() {
    let app = app_with("ann").await;
    let tab = app.login_as("ann", CHROME).await;
    // From here the database refuses new sessions, as a full disk or a lost database would.
    let db = rusqlite::Connection::open(&app.db).unwrap();
    db.execute_batch(
        "CREATE TRIGGER down BEFORE INSERT ON sessions BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
    )
    .unwrap();
    let request = app
        .client
        .post(app.url("/api/login"))
        .json(&json!({"username": "ann", "password": PASSWORD}));
    let reply = app.send_to_failing_store(request).await;
    reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
    assert!(
        !reply.body.to_string().contains("disk full"),
        "logged, not sent"
    );
    // Nothing was half-written: the tab signed in before is still the active one.
    assert_eq!(
        app.get_with_uid("/api/me", &tab).await.status,
        StatusCode::OK
    );
    // The store is back: logins work again, with no restart.
    db.execute_batch("DROP TRIGGER down").unwrap();
    let newer = app.login_as("ann", FIREFOX).await;
    assert_eq!(
        app.get_with_uid("/api/me", &newer).await.status,
        StatusCode::OK
    );
    app.get_with_uid("/api/me", &tab)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "superseded");
}

#[tokio::test]
async fn a_newer_login_supersedes_the_older_tab_and_says_when_and_from_where() {
    let app = app_with("ann").await;
    let tab_a = app.login_as("ann", CHROME).await;
    let tab_b = app.login_as("ann", FIREFOX).await;
    let b_issued = app.get_with_uid("/api/me", &tab_b).await.body["issued_at"].clone();

    for path in ["/api/me", "/api/premium"] {
        let reply = app.get_with_uid(path, &tab_a).await;
        reply.assert_error(StatusCode::UNAUTHORIZED, "superseded");
        assert_eq!(
            reply.body["superseded_at"], b_issued,
            "superseded when the newer login happened"
        );
        assert_eq!(
            reply.body["user_agent"], FIREFOX,
            "by the newer login's browser"
        );
        assert_eq!(reply.body["ip"], "127.0.0.1");
    }
    assert_eq!(
        app.get_with_uid("/api/premium", &tab_b).await.status,
        StatusCode::OK,
        "B keeps working"
    );
}

#[tokio::test]
async fn logout_ends_the_uid_at_once() {
    let app = app_with("ann").await;
    let uid = app.login_as("ann", CHROME).await;
    let reply = app.call(Method::POST, "/api/logout", Some(&uid)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    app.get_with_uid("/api/me", &uid)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "logged_out");
    app.call(Method::POST, "/api/logout", Some(&uid))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "logged_out");
}

#[tokio::test]
async fn logout_with_a_superseded_uid_is_refused_and_changes_nothing() {
    let app = app_with("ann").await;
    let old = app.login_as("ann", CHROME).await;
    let new = app.login_as("ann", FIREFOX).await;
    app.call(Method::POST, "/api/logout", Some(&old))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "superseded");
    assert_eq!(
        app.get_with_uid("/api/me", &new).await.status,
        StatusCode::OK
    );
    app.get_with_uid("/api/me", &old)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "superseded");
}

#[tokio::test]
async fn every_protected_route_refuses_a_missing_malformed_or_unknown_uid() {
    let app = app_with("ann").await;
    let protected = [
        (Method::GET, "/api/me"),
        (Method::GET, "/api/premium"),
        (Method::POST, "/api/logout"),
    ];
    for (method, path) in protected {
        app.call(method.clone(), path, None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "missing_uid");
        for malformed in [
            "",
            "nope",
            "6F1C1F44-3B1E-4B8E-9A53-2F6F1D1B9E10",
            "6f1c1f443b1e4b8e9a532f6f1d1b9e10",
            "{6f1c1f44-3b1e-4b8e-9a53-2f6f1d1b9e10}",
            "6f1c1f44-3b1e-1b8e-9a53-2f6f1d1b9e10",
            "6f1c1f44-3b1e-4b8e-9a53-2f6f1d1b9e10x",
            "6f1c1f44-3b1e-4b8e-9a53-2f6f1d1b9e1",
        ] {
            app.call(method.clone(), path, Some(malformed))
                .await
                .assert_error(StatusCode::UNAUTHORIZED, "malformed_uid");
        }
        app.call(
            method.clone(),
            path,
            Some("6f1c1f44-3b1e-4b8e-9a53-2f6f1d1b9e10"),
        )
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unknown_uid");
    }
    // Non-UTF-8 bytes and a repeated header are malformed too.
    let raw = reqwest::header::HeaderValue::from_bytes(b"\xff\xfe").unwrap();
    let reply = app
        .send(app.client.get(app.url("/api/me")).header("x-tab-uid", raw))
        .await;
    reply.assert_error(StatusCode::UNAUTHORIZED, "malformed_uid");
    let uid = app.login_as("ann", CHROME).await;
    let twice = app
        .client
        .get(app.url("/api/me"))
        .header("x-tab-uid", &uid)
        .header("x-tab-uid", &uid);
    app.send(twice)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "malformed_uid");
}

#[tokio::test]
async fn bad_bodies_get_their_own_codes() {
    let app = spawn_app().await;
    for path in ["/api/register", "/api/login"] {
        let post = |body: &'static str, content_type: Option<&'static str>| {
            let mut request = app.client.post(app.url(path)).body(body);
            if let Some(content_type) = content_type {
                request = request.header(CONTENT_TYPE, content_type);
            }
            request
        };
        for body in [
            "{",
            "not json",
            "[]",
            r#"{"username": 5, "password": "x"}"#,
            r#"{"username": "ann"}"#,
            "",
        ] {
            app.send(post(body, Some("application/json")))
                .await
                .assert_error(StatusCode::BAD_REQUEST, "malformed_json");
        }
        for content_type in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            None,
        ] {
            app.send(post(r#"{"username":"ann","password":"x"}"#, content_type))
                .await
                .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        }
        let big = format!(
            r#"{{"username":"ann","password":"{}"}}"#,
            "x".repeat(64 * 1024)
        );
        let request = app
            .client
            .post(app.url(path))
            .header(CONTENT_TYPE, "application/json")
            .body(big);
        app.send(request)
            .await
            .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_under_api_are_json_errors() {
    let app = spawn_app().await;
    for path in ["/api/nope", "/api", "/api/", "/api/me/extra", "/api/ME"] {
        app.call(Method::GET, path, None)
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    for (method, path) in [
        (Method::GET, "/api/login"),
        (Method::GET, "/api/register"),
        (Method::PUT, "/api/logout"),
        (Method::DELETE, "/api/me"),
        (Method::POST, "/api/premium"),
    ] {
        app.call(method, path, None)
            .await
            .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_logins_over_http_leave_exactly_one_uid_accepted() {
    let app = std::sync::Arc::new(app_with("ann").await);
    let logins: Vec<_> = (0..64)
        .map(|n| {
            let app = app.clone();
            tokio::spawn(async move { app.login_as("ann", &format!("racer {n}")).await })
        })
        .collect();
    let mut uids = Vec::new();
    for login in logins {
        uids.push(login.await.unwrap());
    }
    let (mut accepted, mut superseded) = (0, 0);
    for uid in &uids {
        let reply = app.get_with_uid("/api/me", uid).await;
        match reply.status {
            StatusCode::OK => accepted += 1,
            // Past the account's history bound, the oldest ended UIDs are forgotten.
            _ if reply.code() == "unknown_uid" => {}
            _ => {
                reply.assert_error(StatusCode::UNAUTHORIZED, "superseded");
                superseded += 1;
            }
        }
    }
    assert_eq!(accepted, 1, "exactly one of 64 racing logins stays active");
    assert_eq!(
        superseded, MAX_ENDED_PER_ACCOUNT,
        "the newest ended ones say why"
    );
}

#[tokio::test]
async fn register_costs_one_hash_whether_the_name_is_free_or_taken() {
    let app = spawn_app().await;
    let hashes = || app.state.passwords.computed();
    let before = hashes();
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let free = hashes() - before;
    let before = hashes();
    app.register("ANN")
        .await
        .assert_error(StatusCode::CONFLICT, "username_taken");
    let taken = hashes() - before;
    assert_eq!(free, 1);
    assert_eq!(taken, free, "a taken name must cost what a free one costs");
}

#[tokio::test]
async fn the_tests_run_against_the_full_router_the_binary_serves() {
    let app = spawn_app().await;
    // The site is there: the login page is server-rendered HTML (not an API answer).
    let page = app.client.get(app.url("/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let content_type = page.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(page.text().await.unwrap().contains("Sign in"));
    // And the API's own rules still hold under it: JSON 404, no-store (checked by `send`).
    app.call(Method::GET, "/api/nothing-here", None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn with_hide_superseded_ip_the_old_tab_is_not_told_the_newer_logins_address() {
    let app = common::spawn_app_with(&["--hide-superseded-ip"]).await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let old = app.login_as("ann", CHROME).await;
    app.login_as("ann", FIREFOX).await;
    let reply = app.get_with_uid("/api/me", &old).await;
    reply.assert_error(StatusCode::UNAUTHORIZED, "superseded");
    assert!(reply.body["superseded_at"].is_string());
    assert_eq!(reply.body["user_agent"], FIREFOX);
    assert!(reply.body.get("ip").is_none(), "{}", reply.body);
}

#[tokio::test]
async fn pages_carry_a_nonce_csp_and_every_answer_the_hardening_headers() {
    let app = spawn_app().await;
    let page = app.client.get(app.url("/login")).send().await.unwrap();
    let headers = page.headers().clone();
    let html = page.text().await.unwrap();
    let csp = headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'self'",
        "'wasm-unsafe-eval'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{csp} lacks {directive}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in script-src");
    assert!(nonce.len() >= 16, "{nonce}");
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the inline scripts carry it"
    );
    // A fresh one per response.
    let again = app.client.get(app.url("/login")).send().await.unwrap();
    assert_ne!(
        again.headers()["content-security-policy"].to_str().unwrap(),
        csp
    );

    let api = app.call(Method::GET, "/api/me", None).await;
    for reply_headers in [&headers, &api.headers] {
        assert_eq!(reply_headers["x-content-type-options"], "nosniff");
        assert_eq!(reply_headers["referrer-policy"], "no-referrer");
        assert_eq!(reply_headers["cross-origin-opener-policy"], "same-origin");
        assert_eq!(reply_headers["cross-origin-resource-policy"], "same-origin");
        assert!(
            reply_headers["permissions-policy"]
                .to_str()
                .unwrap()
                .contains("camera=()")
        );
        assert!(
            reply_headers.get("strict-transport-security").is_none(),
            "plain http"
        );
        assert!(
            reply_headers.get("access-control-allow-origin").is_none(),
            "no CORS"
        );
    }
    let https = app
        .send(
            app.client
                .get(app.url("/healthz"))
                .header("x-forwarded-proto", "https"),
        )
        .await;
    assert!(https.headers.contains_key("strict-transport-security"));
}

#[tokio::test]
async fn logout_tells_the_browser_to_clear_the_sites_cookies_and_storage() {
    let app = app_with("ann").await;
    let uid = app.login_as("ann", CHROME).await;
    let out = app.call(Method::POST, "/api/logout", Some(&uid)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(out.headers["clear-site-data"], "\"cookies\", \"storage\"");
}
