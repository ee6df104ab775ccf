//! Shared by the integration tests: a real server on an ephemeral port, and a small client.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;

use clap::Parser;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use solotab::config::Config;
use solotab::http::AppState;
use solotab::startup;
use tokio::sync::oneshot;

pub const PASSWORD: &str = "correct horse battery";

pub const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
pub const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";
pub const PHONE: &str = "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36";

/// One server with its own database, serving the real router on 127.0.0.1:0.
pub struct TestApp {
    pub base: String,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    /// The server's state, to look inside (counts of watches, channels).
    pub state: AppState,
    /// The server's SQLite file.
    pub db: std::path::PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// A server with one registered account.
pub async fn app_with(username: &str) -> TestApp {
    let app = spawn_app().await;
    assert_eq!(app.register(username).await.status, StatusCode::CREATED);
    app
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A server started with extra command-line arguments (e.g. `--ping-secs 1`).
pub async fn spawn_app_with(args: &[&str]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("solotab.db");
    let mut argv = vec!["server", "--db", db.to_str().unwrap()];
    argv.extend_from_slice(args);
    start(&argv, db.clone(), dir).await
}

/// A server on `database_url`, which other servers may share (PostgreSQL), with extra
/// arguments (e.g. `--redis-url`).
pub async fn spawn_app_on(database_url: &str, args: &[&str]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut argv = vec!["server", "--database-url", database_url];
    argv.extend_from_slice(args);
    start(&argv, dir.path().join("(no SQLite file)"), dir).await
}

async fn start(argv: &[&str], db: std::path::PathBuf, dir: tempfile::TempDir) -> TestApp {
    let config = Config::try_parse_from(argv).unwrap();
    let state = startup::state(&config).await.unwrap();
    let listener = startup::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    // The router the binary serves: site, API, headers and limits.
    let router = startup::app(
        startup::leptos_options().unwrap(),
        state.clone(),
        config.request_timeout(),
    );
    let (shutdown, stop) = oneshot::channel::<()>();
    let served = tokio::spawn({
        let state = state.clone();
        async move {
            let stop = async move {
                let _ = stop.await;
            };
            startup::serve(listener, router, &state, &config, stop).await
        }
    });
    TestApp {
        base: format!("http://{addr}"),
        addr,
        // Cookies are sent by hand where a test needs them.
        client: reqwest::Client::new(),
        state,
        db,
        shutdown: Some(shutdown),
        served: Some(served),
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

    /// The origin a page of this server has.
    pub fn origin(&self) -> String {
        self.base.clone()
    }

    /// Shuts the server down gracefully and waits until it has stopped.
    pub async fn shut_down(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(served) = self.served.take() {
            served.await.unwrap().unwrap();
        }
    }

    /// Sends a request and checks what every `/api` answer must carry, and that it is not
    /// a 5xx.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        self.receive(request, false).await
    }

    /// [`send`](Self::send), for a test that makes the server's store fail: a 503 is fine.
    pub async fn send_to_failing_store(&self, request: reqwest::RequestBuilder) -> Reply {
        self.receive(request, true).await
    }

    async fn receive(&self, request: reqwest::RequestBuilder, store_failing: bool) -> Reply {
        let response = request
            .send()
            .await
            .expect("the server answered (no dropped connection)");
        let status = response.status();
        let headers = response.headers().clone();
        let url = response.url().clone();
        let bytes = response.bytes().await.unwrap();
        let expected = status.as_u16() < 500 || (store_failing && status.as_u16() == 503);
        assert!(expected, "{url} answered {status}: {bytes:?}");
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

    /// The kinds of the account's events ("Your sessions"), newest first.
    pub async fn event_kinds(&self, uid: &str) -> Vec<String> {
        let sessions = self.get_with_uid("/api/sessions", uid).await;
        assert_eq!(sessions.status, StatusCode::OK, "{:?}", sessions.body);
        let events = sessions.body["events"].as_array().unwrap().clone();
        events
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect()
    }

    /// `GET /api/device` from the browser holding this device cookie (`name=value`).
    pub async fn device_of(&self, cookie: &str) -> Reply {
        self.send(
            self.client
                .get(self.url("/api/device"))
                .header("cookie", cookie),
        )
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
        self.login_with_device(username, user_agent).await.0
    }

    /// Logs in and returns the new UID and the device cookie (`name=value`) it was given.
    pub async fn login_with_device(&self, username: &str, user_agent: &str) -> (String, String) {
        self.login_with(username, user_agent, PASSWORD).await
    }

    /// [`login_as`](Self::login_as) with another password than the tests' usual one.
    pub async fn login_as_with_password(
        &self,
        username: &str,
        user_agent: &str,
        password: &str,
    ) -> String {
        self.login_with(username, user_agent, password).await.0
    }

    async fn login_with(
        &self,
        username: &str,
        user_agent: &str,
        password: &str,
    ) -> (String, String) {
        let reply = self
            .send(
                self.client
                    .post(self.url("/api/login"))
                    .header("user-agent", user_agent)
                    .json(&json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let cookie = reply
            .headers
            .get(reqwest::header::SET_COOKIE)
            .expect("a login sets the device cookie")
            .to_str()
            .unwrap();
        let pair = cookie.split(';').next().unwrap().to_owned();
        (reply.body["uid"].as_str().unwrap().to_owned(), pair)
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

/// A push-channel client, as a browser tab would be.
pub type Channel =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What a channel saw next.
#[derive(Debug)]
pub enum Seen {
    Event(Value),
    Closed(u16),
}

impl TestApp {
    /// Opens `/api/channel` with this `Origin` (None: no Origin header at all).
    pub async fn open_channel(
        &self,
        origin: Option<&str>,
    ) -> Result<Channel, tokio_tungstenite::tungstenite::Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{}/api/channel", self.addr)
            .into_client_request()
            .unwrap();
        request.headers_mut().remove("origin");
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request)
            .await
            .map(|(ws, _)| ws)
    }

    /// Opens a same-origin channel and says hello with `uid`.
    pub async fn channel_for(&self, uid: &str) -> Channel {
        let mut channel = self.open_channel(Some(&self.origin())).await.unwrap();
        hello(&mut channel, uid).await;
        channel
    }
}

pub async fn hello(channel: &mut Channel, uid: &str) {
    use futures_util::SinkExt;
    let hello = json!({"type": "hello", "uid": uid}).to_string();
    channel
        .send(tokio_tungstenite::tungstenite::Message::text(hello))
        .await
        .unwrap();
}

/// The next event or close on `channel`, within `within`; pings are answered on the way.
pub async fn next_seen(channel: &mut Channel, within: std::time::Duration) -> Option<Seen> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let message = tokio::time::timeout_at(deadline, channel.next())
            .await
            .ok()?;
        match message {
            Some(Ok(Message::Text(text))) => {
                return Some(Seen::Event(serde_json::from_str(&text).unwrap()));
            }
            Some(Ok(Message::Close(frame))) => {
                return Some(Seen::Closed(frame.map_or(1005, |f| f.code.into())));
            }
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => return Some(Seen::Closed(1006)),
        }
    }
}

/// The next message must be `{"type":"ended","error":code,...}`, then a normal close.
pub async fn expect_ended(channel: &mut Channel, code: &str) -> Value {
    expect_ended_within(channel, code, std::time::Duration::from_secs(5)).await
}

/// [`expect_ended`], waiting up to `wait` for the message.
pub async fn expect_ended_within(
    channel: &mut Channel,
    code: &str,
    wait: std::time::Duration,
) -> Value {
    let Some(Seen::Event(event)) = next_seen(channel, wait).await else {
        panic!("expected an ended event with {code}");
    };
    assert_eq!(event["type"], "ended", "{event}");
    assert_eq!(event["error"], code, "{event}");
    assert!(!event["message"].as_str().unwrap_or_default().is_empty());
    assert!(matches!(
        next_seen(channel, wait).await,
        Some(Seen::Closed(1000))
    ));
    event
}

/// The next message must be `{"type":"active",...}`.
pub async fn expect_active(channel: &mut Channel) -> Value {
    let Some(Seen::Event(event)) = next_seen(channel, std::time::Duration::from_secs(5)).await
    else {
        panic!("expected an active event");
    };
    assert_eq!(event["type"], "active", "{event}");
    assert!(is_rfc3339_millis_utc(event["issued_at"].as_str().unwrap()));
    event
}

/// The real server binary in its own process, on an ephemeral port, for what only a process
/// shows: `kill -9`, restarts on the same database, what it prints.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub base: String,
    /// Everything the server printed, line by line.
    pub output: std::sync::mpsc::Receiver<String>,
}

impl ServerProcess {
    /// Starts the binary on `db` with the log at `log` and extra environment `env`, and waits
    /// until it says where it listens.
    pub fn start(db: &std::path::Path, log: &str, env: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        use std::time::Duration;

        let child = Command::new(env!("CARGO_BIN_EXE_server"))
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .env("SOLOTAB_DB", db)
            .env("SOLOTAB_LOG", log)
            .env("NO_COLOR", "1")
            .env_remove("LEPTOS_OUTPUT_NAME")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server binary starts");
        let (lines, output) = std::sync::mpsc::channel();
        // From here on, Drop reaps the process even if the test fails.
        let mut server = ServerProcess {
            child,
            base: String::new(),
            output,
        };
        for stream in [
            Box::new(server.child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(server.child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = lines.send(line);
                }
            });
        }
        let mut seen = Vec::new();
        loop {
            let line = server
                .output
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| {
                    panic!("the server did not say where it listens; it printed {seen:#?}")
                });
            if let Some(at) = line.find("listening on http://") {
                let addr: String = line[at + "listening on http://".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                server.base = format!("http://{addr}");
                return server;
            }
            seen.push(line);
        }
    }

    /// SIGKILL: no shutdown hook, no flush; only what was committed survives. Returns what
    /// the server printed.
    pub fn kill_9(mut self) -> Vec<String> {
        self.child.kill().unwrap(); // std's kill is SIGKILL on Unix
        self.child.wait().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        self.output.try_iter().collect()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A SQLite file with one account, for the administrative tasks the binary runs instead of
/// serving (`set-policy`, `set-mode`, `admin`).
pub struct TaskDb {
    _dir: tempfile::TempDir,
    pub path: std::path::PathBuf,
}

impl TaskDb {
    /// A fresh file holding the account `username` (its password hash is never checked).
    pub async fn with_account(username: &str) -> Self {
        use solotab::store::AccountStore;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("solotab.db");
        let store = solotab::store::SqliteStore::open(&path).unwrap();
        let at = solotab::time::UnixMillis::now();
        store.create(username, "not-a-real-hash", at).await.unwrap();
        Self { _dir: dir, path }
    }

    /// `server --db <file> <args>`, run to completion.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--db", self.path.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    }

    /// The account as the file holds it now.
    pub async fn find(&self, username: &str) -> solotab::store::AccountRecord {
        use solotab::store::AccountStore;
        let store = solotab::store::SqliteStore::open(&self.path).unwrap();
        let key = app::rules::username_key(username);
        store.find(&key).await.unwrap().unwrap()
    }
}
