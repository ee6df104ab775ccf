//! Shared by the integration tests: a real server on an ephemeral port, and a small client.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;

use clap::Parser;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use solotab::config::Config;
use solotab::{http, startup};

pub const PASSWORD: &str = "correct horse battery";

/// One server with its own database, serving the real router on 127.0.0.1:0.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("solotab.db");
    let config = Config::try_parse_from(["server", "--db", db.to_str().unwrap()]).unwrap();
    let state = startup::state(&config).await.unwrap();
    let registry = state.registry.clone();
    let listener = startup::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let router = http::router(state);
    tokio::spawn(startup::serve(
        listener,
        router,
        registry,
        config.history(),
        std::future::pending(),
    ));
    TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

/// A response, with the contract's invariants for `/api` already checked.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {:?}", self.body))
    }

    /// Asserts an error reply: its status, its code, and a non-empty message.
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert_eq!(self.code(), code, "{:?}", self.body);
        let message = self.body["message"].as_str().unwrap_or_default();
        assert!(
            !message.trim().is_empty(),
            "an error must say in words what is wrong: {:?}",
            self.body
        );
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request and checks what every `/api` answer must carry.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request
            .send()
            .await
            .expect("the server answered (no dropped connection)");
        let status = response.status();
        let headers = response.headers().clone();
        let url = response.url().clone();
        let bytes = response.bytes().await.unwrap();
        assert!(status.as_u16() < 500, "{url} answered {status}: {bytes:?}");
        if url.path().starts_with("/api") {
            assert_eq!(
                headers.get(CACHE_CONTROL).map(|v| v.to_str().unwrap()),
                Some("no-store"),
                "{url}"
            );
        }
        let body = if status == StatusCode::NO_CONTENT {
            assert!(bytes.is_empty());
            Value::Null
        } else {
            let content_type = headers
                .get(CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(
                content_type.as_deref(),
                Some("application/json"),
                "{url} {status}"
            );
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{url}: body is not JSON ({e}): {bytes:?}"))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Reply {
        self.send(self.client.post(self.url(path)).json(&body))
            .await
    }

    pub async fn get_with_uid(&self, path: &str, uid: &str) -> Reply {
        self.send(self.client.get(self.url(path)).header("x-tab-uid", uid))
            .await
    }

    pub async fn call(&self, method: Method, path: &str, uid: Option<&str>) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(uid) = uid {
            request = request.header("x-tab-uid", uid);
        }
        self.send(request).await
    }

    pub async fn register(&self, username: &str) -> Reply {
        self.post_json(
            "/api/register",
            json!({"username": username, "password": PASSWORD}),
        )
        .await
    }

    /// Logs in and returns the new UID.
    pub async fn login_as(&self, username: &str, user_agent: &str) -> String {
        let reply = self
            .send(
                self.client
                    .post(self.url("/api/login"))
                    .header("user-agent", user_agent)
                    .json(&json!({"username": username, "password": PASSWORD})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body["uid"].as_str().unwrap().to_owned()
    }
}

/// RFC 3339 UTC with exactly three fractional digits: `2026-11-23T17:39:31.123Z`.
pub fn is_rfc3339_millis_utc(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// A canonical lower-case hyphenated UUID v4.
pub fn is_canonical_uuid_v4(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}
