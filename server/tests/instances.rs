//! Several server instances on one PostgreSQL database (and again with the registry in
//! Redis), over real HTTP and WebSockets: one truth whichever instance answers, pushes across
//! instances, and failing closed while the store is down.
//!
//! Each test has a schema and a key prefix of its own on the test servers
//! (`SOLOTAB_TEST_POSTGRES_URL` / `SOLOTAB_TEST_REDIS_URL`, or the machine's); the outage
//! tests start a private PostgreSQL or Redis they may stop.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{
    CHROME, FIREFOX, Seen, TestApp, expect_active, expect_ended, expect_ended_within, next_seen,
    spawn_app_on,
};
use reqwest::StatusCode;
use serde_json::json;
use solotab::store::{postgres_test_database_url, test_redis};

/// Where the instances keep the registry.
#[derive(Debug, Clone, Copy)]
enum Registry {
    Postgres,
    Redis,
}

const BOTH: [Registry; 2] = [Registry::Postgres, Registry::Redis];

/// Two instances sharing a fresh schema (and key prefix), with `ann` registered (on the first).
async fn two_instances(registry: Registry) -> (TestApp, TestApp) {
    let url = postgres_test_database_url().await;
    let (redis, prefix) = test_redis().await;
    let args: &[&str] = match registry {
        Registry::Postgres => &[],
        Registry::Redis => &["--redis-url", &redis, "--redis-prefix", &prefix],
    };
    let a = spawn_app_on(&url, args).await;
    let b = spawn_app_on(&url, args).await;
    assert_eq!(a.register("ann").await.status, StatusCode::CREATED);
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_on_one_instance_ends_the_tab_of_the_other_everywhere_and_pushes_it() {
    for registry in BOTH {
        one_login_ends_the_other_instances_tab(registry).await;
    }
}

async fn one_login_ends_the_other_instances_tab(registry: Registry) {
    let (a, b) = two_instances(registry).await;
    let first = a.login_as("ann", CHROME).await;
    let mut channel = a.channel_for(&first).await;
    expect_active(&mut channel).await;
    assert_eq!(
        b.get_with_uid("/api/me", &first).await.status,
        StatusCode::OK
    );

    // The account signs in again through the other instance.
    let (second, device) = b.login_with_device("ann", FIREFOX).await;
    let ended = expect_ended(&mut channel, "superseded").await;
    assert_eq!(ended["user_agent"], FIREFOX);
    for instance in [&a, &b] {
        instance
            .get_with_uid("/api/me", &first)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "superseded");
        let me = instance.get_with_uid("/api/me", &second).await;
        assert_eq!(me.status, StatusCode::OK);
        assert_eq!(me.body["username"], "ann");
    }

    // The device cookie B set works on A too.
    let device = a
        .send(a.client.get(a.url("/api/device")).header("cookie", device))
        .await;
    assert_eq!(device.status, StatusCode::OK);
    assert_eq!(device.body["active_elsewhere"], true);

    // A logout on A ends the tab for B too, and B's channel for it is told.
    let mut channel = b.channel_for(&second).await;
    expect_active(&mut channel).await;
    let out = a
        .call(reqwest::Method::POST, "/api/logout", Some(&second))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    expect_ended(&mut channel, "logged_out").await;
    b.get_with_uid("/api/me", &second)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "logged_out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_racing_logins_over_two_instances_leave_one_uid_valid_on_both() {
    for registry in BOTH {
        two_hundred_racing_logins(registry).await;
    }
}

async fn two_hundred_racing_logins(registry: Registry) {
    let (a, b) = two_instances(registry).await;
    let logins: Vec<_> = (0..200)
        .map(|n| {
            let (base, client) = if n % 2 == 0 {
                (&a, &a.client)
            } else {
                (&b, &b.client)
            };
            let request = client
                .post(base.url("/api/login"))
                .json(&json!({"username": "ann", "password": common::PASSWORD}));
            tokio::spawn(async move {
                request
                    .send()
                    .await
                    .unwrap()
                    .json::<serde_json::Value>()
                    .await
            })
        })
        .collect();
    let mut uids = Vec::new();
    for login in logins {
        let body = login.await.unwrap().unwrap();
        uids.push(
            body["uid"]
                .as_str()
                .expect("every login succeeded")
                .to_owned(),
        );
    }
    for instance in [&a, &b] {
        let mut accepted = 0;
        for uid in &uids {
            let reply = instance.get_with_uid("/api/me", uid).await;
            match reply.status {
                StatusCode::OK => accepted += 1,
                // Superseded, or already forgotten (an account keeps its latest ended UIDs).
                _ => assert!(
                    ["superseded", "unknown_uid"].contains(&reply.code()),
                    "{:?}",
                    reply.body
                ),
            }
        }
        assert_eq!(
            accepted, 1,
            "exactly one of 200 UIDs is accepted, on each instance"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgres_is_down_requests_fail_closed_and_service_resumes_without_a_restart() {
    let mut postgres = PrivatePostgres::start();
    let url = postgres.url();
    an_outage_fails_closed(&url, &[], &mut postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_requests_fail_closed_and_service_resumes_without_a_restart() {
    let mut redis = PrivateRedis::start();
    let (url, redis_url) = (postgres_test_database_url().await, redis.url());
    let args = ["--redis-url", &redis_url, "--redis-prefix", "outage:"];
    an_outage_fails_closed(&url, &args, &mut redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_made_while_an_instance_cannot_subscribe_reaches_its_tab_once_it_can() {
    let redis = PrivateRedis::start();
    let (url, redis_url) = (postgres_test_database_url().await, redis.url());
    let args = ["--redis-url", &redis_url, "--redis-prefix", "gap:"];
    let a = spawn_app_on(&url, &args).await;
    let b = spawn_app_on(&url, &args).await;
    assert_eq!(a.register("ann").await.status, StatusCode::CREATED);
    let first = a.login_as("ann", CHROME).await;
    let mut channel = a.channel_for(&first).await;
    expect_active(&mut channel).await;

    // Every instance loses its subscription and may not subscribe again for now; the store
    // itself stays up.
    let mut admin = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let redis_do = |args: &'static [&'static str]| {
        let mut admin = admin.clone();
        async move {
            let _: redis::Value = redis::cmd(args[0])
                .arg(&args[1..])
                .query_async(&mut admin)
                .await
                .unwrap();
        }
    };
    redis_do(&["ACL", "SETUSER", "default", "-subscribe"]).await;
    redis_do(&["CLIENT", "KILL", "TYPE", "pubsub"]).await;

    // B takes over: its claim is published, but A hears nothing.
    let second = b.login_as("ann", FIREFOX).await;
    a.get_with_uid("/api/me", &first)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "superseded");
    assert!(
        next_seen(&mut channel, Duration::from_millis(500))
            .await
            .is_none(),
        "A's tab was told while A could not subscribe"
    );

    // A subscribes again (its next attempt: at most 5 s on), reads its channels' UIDs, and
    // tells the tab.
    redis_do(&["ACL", "SETUSER", "default", "+subscribe"]).await;
    let ended = expect_ended_within(&mut channel, "superseded", Duration::from_secs(15)).await;
    assert_eq!(ended["user_agent"], FIREFOX);
    assert_eq!(
        a.get_with_uid("/api/me", &second).await.status,
        StatusCode::OK
    );
    let _: redis::Value = redis::cmd("PING").query_async(&mut admin).await.unwrap();
}

/// Two instances on `url` with `args`; `store` goes down under them and comes back.
async fn an_outage_fails_closed(url: &str, args: &[&str], store: &mut impl Stoppable) {
    let a = spawn_app_on(url, args).await;
    let b = spawn_app_on(url, args).await;
    assert_eq!(a.register("ann").await.status, StatusCode::CREATED);
    let first = a.login_as("ann", CHROME).await;
    let mut channel = a.channel_for(&first).await;
    expect_active(&mut channel).await;
    // Requests keep running, on both instances, through the outage and the recovery.
    let running = Arc::new(AtomicBool::new(true));
    let load: Vec<_> = [&a, &b]
        .into_iter()
        .map(|instance| {
            let me = instance
                .client
                .get(instance.url("/api/me"))
                .header("x-tab-uid", &first);
            tokio::spawn(keep_asking(me, Arc::clone(&running)))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;

    store.stop();
    // Protected requests, logins and new channels: 503 store_unavailable, nothing else.
    for instance in [&a, &b] {
        instance
            .send_to_failing_store(
                instance
                    .client
                    .get(instance.url("/api/me"))
                    .header("x-tab-uid", &first),
            )
            .await
            .assert_error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
        let login = instance
            .client
            .post(instance.url("/api/login"))
            .json(&json!({
                "username": "ann", "password": common::PASSWORD
            }));
        instance
            .send_to_failing_store(login)
            .await
            .assert_error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
    }
    let mut refused = b.channel_for(&first).await;
    match next_seen(&mut refused, Duration::from_secs(10)).await {
        Some(Seen::Closed(1013)) => {}
        other => panic!("a channel opened while the store is down: {other:?}"),
    }
    // The open channel is not told anything false.
    assert!(
        next_seen(&mut channel, Duration::from_millis(300))
            .await
            .is_none()
    );

    store.start_again();
    // No instance restarts: each answers again once the database does.
    for instance in [&a, &b] {
        wait_until_served(instance, &first).await;
    }
    running.store(false, Ordering::Relaxed);
    for answers in load {
        let answers = answers.await.unwrap();
        let unavailable = answers
            .iter()
            .filter(|a| **a == StatusCode::SERVICE_UNAVAILABLE)
            .count();
        assert!(
            unavailable > 0,
            "the load saw no outage: {} answers",
            answers.len()
        );
        assert_eq!(
            answers.last(),
            Some(&StatusCode::OK),
            "and saw the recovery"
        );
    }
    // A takeover made as soon as the database is back reaches A's channel, whether A's
    // subscription came back before it (a notice) or after (the re-check on resubscribing).
    let second = b.login_as("ann", FIREFOX).await;
    expect_ended(&mut channel, "superseded").await;
    assert_eq!(
        a.get_with_uid("/api/me", &second).await.status,
        StatusCode::OK
    );
}

/// Sends `request` again and again until `running` is false and it was last served; returns
/// every status. Each answer must be a 200 or a 503 `store_unavailable` in JSON: no dropped
/// connection, no other error.
async fn keep_asking(
    request: reqwest::RequestBuilder,
    running: Arc<AtomicBool>,
) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    // Told to stop, it still asks until it is served (for at most 30 s): a request sent a
    // moment before the store came back may be answered 503 after the test saw it back.
    let mut stop_by = None;
    loop {
        if !running.load(Ordering::Relaxed) {
            let stop_by = *stop_by.get_or_insert_with(|| Instant::now() + Duration::from_secs(30));
            if statuses.last() == Some(&StatusCode::OK) || Instant::now() > stop_by {
                break;
            }
        }
        let reply = request
            .try_clone()
            .unwrap()
            .send()
            .await
            .expect("an answer, not a dropped connection");
        let status = reply.status();
        let body: serde_json::Value = reply.json().await.expect("a JSON body");
        match status {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["error"], "store_unavailable", "{body}")
            }
            other => panic!("{other} during the outage: {body}"),
        }
        statuses.push(status);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    statuses
}

/// Polls `/api/me` until it answers 200 (at most 30 s); only 503s are allowed meanwhile.
async fn wait_until_served(app: &TestApp, uid: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = app
            .send_to_failing_store(app.client.get(app.url("/api/me")).header("x-tab-uid", uid))
            .await;
        if reply.status == StatusCode::OK {
            return;
        }
        reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
        assert!(
            Instant::now() < deadline,
            "the instance did not recover by itself"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A store server the test may stop and start.
trait Stoppable {
    fn stop(&mut self);
    fn start_again(&mut self);
}

/// A Redis server of this test's own, from Debian's `redis-server`, on a free port, with
/// its append-only file in a temporary directory and every write synced (as the README
/// says to run it): stopping it with SIGKILL loses nothing.
struct PrivateRedis {
    dir: tempfile::TempDir,
    port: u16,
    server: Option<std::process::Child>,
}

impl PrivateRedis {
    fn start() -> Self {
        let mut redis = Self {
            dir: tempfile::Builder::new()
                .prefix("solotab-redis-")
                .tempdir()
                .unwrap(),
            port: free_port(),
            server: None,
        };
        redis.start_again();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Stoppable for PrivateRedis {
    fn start_again(&mut self) {
        let port = self.port.to_string();
        let server = std::process::Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server; ./dev.sh test installs it)");
        self.server = Some(server);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.kill().unwrap();
            server.wait().unwrap();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A PostgreSQL server of this test's own, from Debian's binaries, on a free port, with its
/// data in a temporary directory: one the test may stop and start.
struct PrivatePostgres {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

impl PrivatePostgres {
    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|v| v.path().join("bin"))
                    .filter(|bin| bin.join("initdb").exists())
                    .max()
            })
            .expect(
                "PostgreSQL's server binaries (Debian's postgresql; ./dev.sh test installs it)",
            );
        let dir = tempfile::Builder::new()
            .prefix("solotab-pg-")
            .tempdir()
            .unwrap();
        let mut postgres = Self {
            bin,
            dir,
            port: free_port(),
            running: false,
        };
        if is_root() {
            // PostgreSQL refuses to run as root: it runs as Debian's postgres user.
            let path = postgres.dir.path().to_str().unwrap().to_owned();
            postgres.run("chown", &["postgres", &path], false);
        }
        let data = postgres.data();
        postgres.run(
            "initdb",
            &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            true,
        );
        postgres.start_again();
        let port = postgres.port.to_string();
        postgres.run(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "test"],
            true,
        );
        postgres
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/test", self.port)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_str().unwrap().to_owned()
    }
}

impl Stoppable for PrivatePostgres {
    fn start_again(&mut self) {
        let (data, log) = (self.data(), self.dir.path().join("log"));
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = log.to_str().unwrap().to_owned();
        self.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-w", "-o", &options, "start"],
            true,
        );
        self.running = true;
    }

    fn stop(&mut self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"], true);
        self.running = false;
    }
}

impl PrivatePostgres {
    /// Runs a PostgreSQL program (`postgres_bin`) or a system one, as postgres when root.
    fn run(&self, program: &str, args: &[&str], postgres_bin: bool) {
        let program = if postgres_bin {
            self.bin.join(program).to_str().unwrap().to_owned()
        } else {
            program.to_owned()
        };
        let mut command = if is_root() && postgres_bin {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--", &program]);
            command
        } else {
            std::process::Command::new(&program)
        };
        let output = command.args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            self.stop();
        }
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// `server` with `--database-url url`: its exit status and what it wrote to stderr.
fn start_binary_on(url: &str) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("NO_COLOR", "1")
        .args(["--database-url", url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), stderr)
}

#[test]
fn a_wrong_or_unreachable_database_stops_the_server_with_one_clear_line() {
    // Nothing listens on port 1.
    let (ok, stderr) = start_binary_on("postgres://app:hunter2@127.0.0.1:1/solotab");
    assert!(!ok);
    assert!(
        stderr.contains("error: cannot reach PostgreSQL at 127.0.0.1:1/solotab"),
        "{stderr}"
    );
    let (ok, bad_url) = start_binary_on("postgres://app:hunter2@127.0.0.1:notaport/solotab");
    assert!(!ok);
    assert!(bad_url.contains("not a PostgreSQL URL"), "{bad_url}");
    let (ok, bad_scheme) = start_binary_on("mysql://app:hunter2@127.0.0.1/solotab");
    assert!(!ok);
    assert!(
        bad_scheme.contains("unsupported database URL scheme"),
        "{bad_scheme}"
    );
    for output in [stderr, bad_url, bad_scheme] {
        assert!(
            !output.contains("hunter2"),
            "a password was shown: {output}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_redis_or_redis_without_postgres_stops_the_server_with_one_clear_line() {
    let postgres = postgres_test_database_url().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("NO_COLOR", "1")
        .args(["--database-url", &postgres])
        .args(["--redis-url", "redis://:hunter2@127.0.0.1:1/0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("error: cannot reach Redis at 127.0.0.1:1/0"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "a password was shown: {stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .args(["--db", dir.path().join("s.db").to_str().unwrap()])
        .args(["--redis-url", "redis://127.0.0.1:6379"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("--redis-url needs a PostgreSQL --database-url"),
        "{stderr}"
    );
}
