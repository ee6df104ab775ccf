//! The real binary: state survives `kill -9`, and one database file has one server.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

mod common;

use common::{PASSWORD, ServerProcess};

fn start(db: &Path) -> ServerProcess {
    ServerProcess::start(db, "info", &[])
}

fn start_logging(db: &Path, log: &str) -> ServerProcess {
    ServerProcess::start(db, log, &[])
}

impl ServerProcess {
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn me(&self, uid: &str) -> (StatusCode, Value) {
        let response = reqwest::Client::new()
            .get(format!("{}/api/me", self.base))
            .header("x-tab-uid", uid)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn login(&self) -> String {
        self.login_with_cookie().await.0
    }

    /// Logs in; returns the UID and the device cookie (`name=value`).
    async fn login_with_cookie(&self) -> (String, String) {
        let response = reqwest::Client::new()
            .post(format!("{}/api/login", self.base))
            .json(&json!({"username": "ann", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = response.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        (body["uid"].as_str().unwrap().to_owned(), cookie)
    }

    async fn device(&self, cookie: &str) -> StatusCode {
        reqwest::Client::new()
            .get(format!("{}/api/device", self.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .status()
    }
}

#[tokio::test]
async fn kill_9_loses_nothing_and_history_survives() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("solotab.db");

    let first = start(&db);
    let (status, _) = first
        .post(
            "/api/register",
            json!({"username": "ann", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let superseded = first.login().await;
    let logged_out = first.login().await;
    let (status, _) = {
        let response = reqwest::Client::new()
            .post(format!("{}/api/logout", first.base))
            .header("x-tab-uid", &logged_out)
            .send()
            .await
            .unwrap();
        (response.status(), ())
    };
    assert_eq!(status, StatusCode::NO_CONTENT);
    let older = first.login().await;
    // Answered 200: committed, whatever happens next.
    let (active, device) = first.login_with_cookie().await;
    let printed = first.kill_9();

    let second = start(&db);
    let (status, body) = second.me(&active).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the active tab keeps working after kill -9: {body}"
    );
    assert_eq!(body["username"], "ann");
    assert_eq!(
        second.device(&device).await,
        StatusCode::OK,
        "this browser can still \"Use here\" after kill -9"
    );
    for (uid, code) in [
        (&superseded, "superseded"),
        (&older, "superseded"),
        (&logged_out, "logged_out"),
    ] {
        let (status, body) = second.me(uid).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], code, "{body}");
    }
    let printed_after = second.kill_9();

    // The UID is a credential: it never appears in the logs, and neither does the password.
    let logs = [printed, printed_after].concat().join("\n");
    assert!(logs.contains("logged in"), "the server logs logins: {logs}");
    let device_token = device.split('=').nth(1).unwrap().to_owned();
    for secret in [&superseded, &logged_out, &older, &active, &device_token] {
        assert!(!logs.contains(secret.as_str()), "a UID was logged:\n{logs}");
    }
    assert!(!logs.contains(PASSWORD), "the password was logged");
}

#[tokio::test]
async fn a_second_server_on_the_same_file_exits_at_once_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("solotab.db");
    let first = start(&db);

    let started = std::time::Instant::now();
    let second = Command::new(env!("CARGO_BIN_EXE_server"))
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("SOLOTAB_DB", &db)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "it must not wait for the lock"
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another Solotab server is already using"),
        "{stderr}"
    );
    assert!(stderr.contains("solotab.db"), "{stderr}");

    // And the first one is unharmed.
    let response = reqwest::get(format!("{}/healthz", first.base))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    first.kill_9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_in_the_middle_of_logins_loses_no_answered_login() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("solotab.db");
    let first = start(&db);
    const ACCOUNTS: usize = 6;
    const PER_ACCOUNT: usize = 8;
    for a in 0..ACCOUNTS {
        let (status, _) = first
            .post(
                "/api/register",
                json!({"username": format!("acct{a}"), "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }

    // Many logins at once; the server is killed once a third of them have been answered.
    let (answers, mut answered) = tokio::sync::mpsc::unbounded_channel();
    let client = reqwest::Client::new();
    for n in 0..ACCOUNTS * PER_ACCOUNT {
        let (client, base, answers) = (client.clone(), first.base.clone(), answers.clone());
        tokio::spawn(async move {
            let account = n % ACCOUNTS;
            let reply = client
                .post(format!("{base}/api/login"))
                .json(&json!({"username": format!("acct{account}"), "password": PASSWORD}))
                .send()
                .await;
            if let Ok(reply) = reply
                && reply.status() == StatusCode::OK
                && let Ok(body) = reply.json::<Value>().await
            {
                let _ = answers.send((account, body["uid"].as_str().unwrap().to_owned()));
            }
        });
    }
    drop(answers);
    let mut acknowledged = Vec::new();
    while let Some(answer) = answered.recv().await {
        acknowledged.push(answer);
        if acknowledged.len() == ACCOUNTS * PER_ACCOUNT / 3 {
            // SIGKILL while the other logins are still in flight.
            let pid = first.child.id().to_string();
            assert!(
                Command::new("kill")
                    .args(["-9", &pid])
                    .status()
                    .unwrap()
                    .success()
            );
        }
    }
    first.kill_9();
    assert!(
        acknowledged.len() < ACCOUNTS * PER_ACCOUNT,
        "the kill came after every login had finished: nothing was in flight"
    );

    let second = start(&db);
    let mut active_per_account = [0; ACCOUNTS];
    for (account, uid) in &acknowledged {
        let (status, body) = second.me(uid).await;
        match status {
            StatusCode::OK => active_per_account[*account] += 1,
            _ => assert_eq!(
                body["error"], "superseded",
                "an answered login was lost: {body}"
            ),
        }
    }
    assert!(
        active_per_account.iter().all(|&n| n <= 1),
        "one account has two active tabs after the restart: {active_per_account:?}"
    );
    second.kill_9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_requests_writes_a_handful_of_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("solotab.db"));
    let client = reqwest::Client::new();
    let unknown = "6f1c1f44-3b1e-4b8e-9a53-2f6f1d1b9e10";
    for n in 0..600 {
        let mut request = client.get(format!("{}/api/me", server.base));
        if n % 2 == 0 {
            request = request.header("x-tab-uid", unknown);
        }
        assert_eq!(
            request.send().await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // One more after the window: it brings the summary of what was not logged line by line.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let last = client
        .get(format!("{}/api/me", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(last.status(), StatusCode::UNAUTHORIZED);
    let logs = server.kill_9();
    let rejected = logs
        .iter()
        .filter(|l| l.contains("request rejected"))
        .count();
    assert!(
        (2..=12).contains(&rejected),
        "{rejected} lines for 601 refused requests:\n{}",
        logs.join("\n")
    );
    let summary = logs
        .iter()
        .find(|l| l.contains("refused more requests than were logged"))
        .unwrap_or_else(|| panic!("no summary line:\n{}", logs.join("\n")));
    assert!(
        summary.contains("unknown_uid=") && summary.contains("missing_uid="),
        "{summary}"
    );
}

/// Every form a secret could take in a file or a log: as sent, upper case, hex without
/// hyphens, and its raw bytes.
fn forms(secret: &str) -> Vec<Vec<u8>> {
    let plain: String = secret.chars().filter(|c| *c != '-').collect();
    let raw: Vec<u8> = (0..plain.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&plain[i..i + 2], 16).unwrap())
        .collect();
    vec![
        secret.as_bytes().to_vec(),
        secret.to_uppercase().into_bytes(),
        plain.clone().into_bytes(),
        plain.to_uppercase().into_bytes(),
        raw,
    ]
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn no_uid_or_device_token_is_in_the_database_files_or_the_debug_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("solotab.db");
    let server = start_logging(&db, "debug");
    let client = reqwest::Client::new();
    let (status, _) = server
        .post(
            "/api/register",
            json!({"username": "ann", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // A full scenario: logins, reads, "Use here", the push channel, a logout.
    let mut secrets = Vec::new();
    let (first, device) = server.login_with_cookie().await;
    let me = client
        .get(format!("{}/api/premium", server.base))
        .header("x-tab-uid", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let (channel_uid, _) = server.login_with_cookie().await;
    let ws_url = format!("{}/api/channel", server.base.replacen("http", "ws", 1));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url)
            .unwrap();
    request
        .headers_mut()
        .insert("origin", server.base.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    futures_util::SinkExt::send(
        &mut ws,
        tokio_tungstenite::tungstenite::Message::text(
            json!({"type": "hello", "uid": channel_uid}).to_string(),
        ),
    )
    .await
    .unwrap();
    let (_, second_device) = server.login_with_cookie().await;
    let used = client
        .post(format!("{}/api/use-here", server.base))
        .header("cookie", &second_device)
        .header("origin", &server.base)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), StatusCode::OK);
    let used_uid = used.json::<Value>().await.unwrap()["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = client
        .post(format!("{}/api/logout", server.base))
        .header("x-tab-uid", &used_uid)
        .header("cookie", &second_device)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    drop(ws);
    secrets.extend([first, channel_uid, used_uid]);
    for cookie in [device, second_device] {
        secrets.push(cookie.split('=').nth(1).unwrap().to_owned());
    }
    let logs = server.kill_9().join("\n");
    assert!(
        logs.contains("DEBUG"),
        "the log ran at debug level:\n{logs}"
    );

    let mut files = Vec::new();
    for name in ["solotab.db", "solotab.db-wal", "solotab.db-shm"] {
        files.push((
            name,
            std::fs::read(dir.path().join(name)).unwrap_or_default(),
        ));
    }
    assert!(files.iter().map(|(_, b)| b.len()).sum::<usize>() > 0);
    for secret in &secrets {
        for form in forms(secret) {
            assert!(!holds(logs.as_bytes(), &form), "the log holds a secret");
            for (name, bytes) in &files {
                assert!(!holds(bytes, &form), "{name} holds an issued secret");
            }
        }
    }
}
