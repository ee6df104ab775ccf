//! The admin API: only for accounts granted the role; every active tab (searched, paged);
//! an account signed out (pushed at once); an account's policy set; each action in the
//! target's history. And `server admin grant|revoke` on the command line.

mod common;

use common::{CHROME, FIREFOX, PASSWORD, TestApp, expect_active, expect_ended, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// An app where "root" is an administrator, signed in; returns its UID.
async fn with_admin() -> (TestApp, String) {
    let app = spawn_app_with(&["--max-registrations-per-hour", "0"]).await;
    assert_eq!(app.register("root").await.status, StatusCode::CREATED);
    let root = app.state.accounts.find("root").await.unwrap().unwrap();
    assert!(app.state.accounts.set_admin(root.id, true).await.unwrap());
    let uid = app.login_as("root", FIREFOX).await;
    (app, uid)
}

async fn post(app: &TestApp, uid: &str, path: &str, body: Value) -> common::Reply {
    let request = app
        .client
        .post(app.url(path))
        .header("x-tab-uid", uid)
        .json(&body);
    app.send(request).await
}

#[tokio::test]
async fn only_an_administrator_may_use_the_admin_api() {
    let (app, root) = with_admin().await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let ann = app.login_as("ann", CHROME).await;
    app.get_with_uid("/api/admin/tabs", &ann)
        .await
        .assert_error(StatusCode::FORBIDDEN, "not_admin");
    post(
        &app,
        &ann,
        "/api/admin/sign-out",
        json!({"username": "root"}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "not_admin");
    post(
        &app,
        &ann,
        "/api/admin/policy",
        json!({"username": "ann", "policy": "deny-new"}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "not_admin");
    assert_eq!(
        app.get_with_uid("/api/me", &root).await.status,
        StatusCode::OK,
        "nothing happened"
    );
    app.call(reqwest::Method::GET, "/api/admin/tabs", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "missing_uid");
    // A revoked role takes effect at once.
    assert_eq!(
        app.get_with_uid("/api/admin/tabs", &root).await.status,
        StatusCode::OK
    );
    let id = app.state.accounts.find("root").await.unwrap().unwrap().id;
    app.state.accounts.set_admin(id, false).await.unwrap();
    app.get_with_uid("/api/admin/tabs", &root)
        .await
        .assert_error(StatusCode::FORBIDDEN, "not_admin");
}

#[tokio::test]
async fn the_admin_lists_every_active_tab_searched_and_paged() {
    let (app, root) = with_admin().await;
    for n in 0..55 {
        let name = format!("user{n:02}");
        assert_eq!(app.register(&name).await.status, StatusCode::CREATED);
        app.login_as(&name, CHROME).await;
    }
    let page = |query: &'static str| {
        let path = format!("/api/admin/tabs{query}");
        let root = root.clone();
        let app = &app;
        async move { app.get_with_uid(&path, &root).await }
    };
    let first = page("").await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(
        (
            first.body["total"].clone(),
            first.body["page"].clone(),
            first.body["pages"].clone()
        ),
        (json!(56), json!(1), json!(2))
    );
    let tabs = first.body["tabs"].as_array().unwrap();
    assert_eq!(tabs.len(), 50);
    assert_eq!(tabs[0]["username"], "root", "by username");
    assert_eq!(tabs[1]["username"], "user00");
    assert_eq!(tabs[1]["user_agent"], CHROME);
    let second = page("?page=2").await;
    assert_eq!(second.body["tabs"].as_array().unwrap().len(), 6);
    assert_eq!(second.body["tabs"][5]["username"], "user54");
    let found = page("?search=USER5").await;
    assert_eq!(found.body["total"], 5);
    assert_eq!(found.body["tabs"][0]["username"], "user50");
    assert_eq!(page("?search=nobody").await.body["total"], 0);
    assert_eq!(page("?search=nobody").await.body["pages"], 1);
    page("?page=zero")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    // No UID ever leaves the server: the listing names no tab at all.
    assert!(!first.body.to_string().contains(&root));
}

#[tokio::test]
async fn an_admin_sign_out_pushes_every_tab_of_the_account_ends_its_browsers_and_is_in_its_history()
{
    let (app, root) = with_admin().await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let (ann, ann_browser) = app.login_with_device("ann", CHROME).await;
    let mut channel = app.channel_for(&ann).await;
    expect_active(&mut channel).await;
    let done = post(
        &app,
        &root,
        "/api/admin/sign-out",
        json!({"username": "ANN"}),
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(done.body["tabs"], 1);
    expect_ended(&mut channel, "revoked").await;
    // Its browser cannot "Use here" its way back: the password is needed again.
    app.device_of(&ann_browser)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "no_device");
    app.get_with_uid("/api/me", &ann)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "revoked");
    post(
        &app,
        &root,
        "/api/admin/sign-out",
        json!({"username": "nobody"}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        app.get_with_uid("/api/me", &root).await.status,
        StatusCode::OK
    );
    let again = app.login_as("ann", CHROME).await;
    let kinds = app.event_kinds(&again).await;
    assert_eq!(
        kinds,
        ["login", "rejected_stale", "admin_sign_out", "login"],
        "the signed-out tab's next request is turned away, once"
    );
}

#[tokio::test]
async fn an_admin_sets_an_accounts_policy_which_applies_from_its_next_login() {
    let (app, root) = with_admin().await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let set = |body: Value| post(&app, &root, "/api/admin/policy", body);
    assert_eq!(
        set(json!({"username": "ann", "policy": "deny-new"}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let first = app.login_as("ann", CHROME).await;
    let refused = app
        .post_json(
            "/api/login",
            json!({"username": "ann", "password": PASSWORD}),
        )
        .await;
    refused.assert_error(StatusCode::CONFLICT, "account_in_use");
    assert_eq!(
        set(json!({"username": "ann", "policy": "max-tabs", "max_tabs": 2}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let second = app.login_as("ann", FIREFOX).await;
    for uid in [&first, &second] {
        assert_eq!(
            app.get_with_uid("/api/me", uid).await.status,
            StatusCode::OK
        );
    }
    // What is not a policy is refused, and changes nothing.
    for bad in [
        json!({"username": "ann", "policy": "oldest-wins"}),
        json!({"username": "ann", "policy": "max-tabs"}),
        json!({"username": "ann", "policy": "max-tabs", "max_tabs": 0}),
        json!({"username": "ann", "policy": "deny-new", "max_tabs": 2}),
    ] {
        set(bad)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_input");
    }
    set(json!({"username": "nobody", "policy": "default"}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let ann = app.state.accounts.find("ann").await.unwrap().unwrap();
    assert_eq!(ann.policy, Some(solotab::registry::Policy::MaxTabs(2)));
    let kinds = app.get_with_uid("/api/sessions", &second).await.body["events"].clone();
    assert!(
        kinds
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "admin_policy")
            .count()
            == 2
    );
}

#[tokio::test]
async fn admin_grant_and_revoke_on_the_command_line() {
    let db = common::TaskDb::with_account("Root").await;
    let granted = db.run(&["admin", "grant", "ROOT"]);
    assert!(
        granted.status.success(),
        "{}",
        String::from_utf8_lossy(&granted.stderr)
    );
    assert!(String::from_utf8_lossy(&granted.stdout).contains("Root: administrator"));
    assert!(db.find("root").await.admin);
    assert!(db.run(&["admin", "revoke", "root"]).status.success());
    assert!(!db.find("root").await.admin);
    let missing = db.run(&["admin", "grant", "nobody"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no account is named \"nobody\""));
}
