//! Several instances: what a shared store costs, as ratios to baselines measured in the same
//! run, on loopback. Prints Markdown for docs/BENCHMARKS.md; asserts no time.
//!
//! 1. Checked request p99 (`GET /api/me`) over an unchecked one (`GET /healthz`) on the same
//!    server and connection, with the registry in SQLite (memory), PostgreSQL and Redis.
//! 2. Store round trips per checked request, from the stores' own counters: PostgreSQL's
//!    `pg_stat_statements` (when the server preloads it, as `./dev.sh bench`'s private
//!    instance does; otherwise `pg_stat_database.xact_commit`, one per statement here) and
//!    Redis's `INFO commandstats`.
//! 3. Takeover latency ("Use here" sent -> the old tab's channel has `ended`), with the old
//!    tab's channel on the same instance and on the other one, against the store's own
//!    loopback round trip (`SELECT 1`, `PING`) p99: the cross-instance target is
//!    p99(cross) <= p99(same) + 3 x p99(round trip).
//!
//! Uses `SOLOTAB_TEST_POSTGRES_URL` and `SOLOTAB_TEST_REDIS_URL` (default: the local servers),
//! a schema and key prefix of its own.
//! `cargo run --release -p server --example instances_bench -- [--quick]` (`./dev.sh bench`).

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use redis::AsyncCommands;
use serde_json::{Value, json};
use solotab::config::Config;
use solotab::store::{postgres_test_database_url, test_redis};
use support::{PASSWORD, expect, login, median, open_channel, percentile, register, spread};

/// The server's allocator (see `support::ServerAllocator`).
#[global_allocator]
static GLOBAL: support::ServerAllocator = support::SERVER_ALLOCATOR;

struct Sizes {
    rounds: usize,
    per_round: usize,
    takeovers: usize,
    round_trips: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
    Redis,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite (memory check)",
            Backend::Postgres => "PostgreSQL",
            Backend::Redis => "PostgreSQL + Redis",
        }
    }
}

/// The store settings of one deployment: a fresh schema and key prefix each.
struct Deployment {
    backend: Backend,
    args: Vec<String>,
    redis_prefix: String,
    _dir: tempfile::TempDir,
}

impl Deployment {
    async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (redis, prefix) = test_redis().await;
        let args = match backend {
            Backend::Sqlite => vec!["--db".into(), dir.path().join("s.db").display().to_string()],
            Backend::Postgres => vec!["--database-url".into(), postgres_test_database_url().await],
            Backend::Redis => vec![
                "--database-url".into(),
                postgres_test_database_url().await,
                "--redis-url".into(),
                redis,
                "--redis-prefix".into(),
                prefix.clone(),
            ],
        };
        Self {
            backend,
            args,
            redis_prefix: prefix,
            _dir: dir,
        }
    }

    /// Starts one more instance on this deployment's stores.
    async fn instance(&self) -> SocketAddr {
        let mut argv = vec![
            "server".to_owned(),
            "--max-login-failures".into(),
            "0".into(),
        ];
        argv.extend(self.args.iter().cloned());
        let config = Config::try_parse_from(argv).unwrap();
        let state = solotab::startup::state(&config)
            .await
            .expect("the stores open");
        let listener = solotab::startup::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let options = solotab::startup::leptos_options().unwrap();
        let router = solotab::startup::app(options, state.clone(), config.request_timeout());
        tokio::spawn(async move {
            let never = std::future::pending::<()>();
            solotab::startup::serve(listener, router, &state, &config, never).await
        });
        addr
    }
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = if quick {
        Sizes {
            rounds: 2,
            per_round: 100,
            takeovers: 10,
            round_trips: 100,
        }
    } else {
        Sizes {
            rounds: 8,
            per_round: 2_000,
            takeovers: 100,
            round_trips: 1_000,
        }
    };
    println!(
        "### Several instances: checked requests, store round trips, takeover across instances\n"
    );
    checked_requests(&sizes).await;
    round_trips(&sizes).await;
    takeovers(&sizes).await;
}

/// 1: p99 of checked over unchecked requests, per backend, in interleaved rounds.
async fn checked_requests(sizes: &Sizes) {
    println!(
        "Checked request p99 (`GET /api/me`) / unchecked request p99 (`GET /healthz`), same server, \
         one keep-alive connection, {} rounds of {} requests each, interleaved:\n",
        sizes.rounds, sizes.per_round
    );
    println!("| registry in | checked p99 (us) | unchecked p99 (us) | checked / unchecked p99 |");
    println!("|---|---|---|---|");
    for backend in [Backend::Sqlite, Backend::Postgres, Backend::Redis] {
        let deployment = Deployment::new(backend).await;
        let base = format!("http://{}", deployment.instance().await);
        let client = reqwest::Client::new();
        register(&client, &base, "bench").await;
        let uid = login(&client, &base, "bench").await;
        let (mut checked, mut unchecked, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..sizes.rounds {
            let me = timed_gets(
                &client,
                &format!("{base}/api/me"),
                Some(&uid),
                sizes.per_round,
            )
            .await;
            let health =
                timed_gets(&client, &format!("{base}/healthz"), None, sizes.per_round).await;
            let (me, health) = (percentile(&me, 0.99), percentile(&health, 0.99));
            ratios.push(me.as_secs_f64() / health.as_secs_f64());
            checked.push(me.as_secs_f64() * 1e6);
            unchecked.push(health.as_secs_f64() * 1e6);
        }
        println!(
            "| {} | {:.0} | {:.0} | **{:.2}** ({}) |",
            backend.name(),
            median(&checked),
            median(&unchecked),
            median(&ratios),
            spread(&ratios)
        );
    }
    println!("\n(median of the per-round figures; spread: lowest-highest round)\n");
}

async fn timed_gets(
    client: &reqwest::Client,
    url: &str,
    uid: Option<&str>,
    count: usize,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let mut request = client.get(url);
        if let Some(uid) = uid {
            request = request.header("x-tab-uid", uid);
        }
        let started = Instant::now();
        let reply = request.send().await.unwrap();
        assert!(reply.status().is_success(), "{url}: {}", reply.status());
        reply.bytes().await.unwrap();
        times.push(started.elapsed());
    }
    times
}

/// 2: statements and commands per checked request, from the stores' own counters.
async fn round_trips(sizes: &Sizes) {
    let count = sizes.per_round;
    println!(
        "Store round trips per checked request ({count} `GET /api/me`), from the stores' own counters:\n"
    );
    println!(
        "| registry in | PostgreSQL statements / request | Redis commands / request | counter |"
    );
    println!("|---|---|---|---|");
    for backend in [Backend::Postgres, Backend::Redis] {
        let deployment = Deployment::new(backend).await;
        let base = format!("http://{}", deployment.instance().await);
        let client = reqwest::Client::new();
        register(&client, &base, "bench").await;
        let uid = login(&client, &base, "bench").await;
        // Let start-up work (the fan-out's LISTEN / SUBSCRIBE) finish before counting.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let postgres = PostgresCounter::start().await;
        let redis = RedisCounter::start(&deployment.redis_prefix).await;
        timed_gets(&client, &format!("{base}/api/me"), Some(&uid), count).await;
        let statements = postgres.read().await;
        let commands = redis.read().await;
        println!(
            "| {} | **{:.2}** | **{:.2}** | {}; `INFO commandstats` |",
            deployment.backend.name(),
            statements as f64 / count as f64,
            commands as f64 / count as f64,
            postgres.source
        );
    }
    println!(
        "\n(target: <= 1.0 store round trip per checked request. The PostgreSQL counters are \
         database-wide and the Redis one server-wide: this runs alone, and the counters' own \
         queries are left out.)\n"
    );
}

/// Statements PostgreSQL ran, by `pg_stat_statements` if loaded, else committed
/// transactions (each statement outside a transaction is one).
struct PostgresCounter {
    client: tokio_postgres::Client,
    source: &'static str,
    before: i64,
}

const STATEMENTS: &str = "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements \
     WHERE query NOT ILIKE '%pg_stat%' AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())";
const COMMITS: &str = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()";

impl PostgresCounter {
    async fn start() -> Self {
        let url = std::env::var("SOLOTAB_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let has_statements = client
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .await
            .is_ok()
            && client.query_one(STATEMENTS, &[]).await.is_ok();
        let source = if has_statements {
            client
                .query_one("SELECT pg_stat_statements_reset()", &[])
                .await
                .unwrap();
            "`pg_stat_statements` calls"
        } else {
            "`pg_stat_database.xact_commit` (pg_stat_statements not loaded)"
        };
        let mut counter = Self {
            client,
            source,
            before: 0,
        };
        counter.before = counter.now().await;
        counter
    }

    async fn now(&self) -> i64 {
        // Statistics reach the views when a backend reports them: force ours out first.
        let _ = self
            .client
            .batch_execute("SELECT pg_stat_clear_snapshot()")
            .await;
        let query = if self.source.contains("pg_stat_statements` calls") {
            STATEMENTS
        } else {
            COMMITS
        };
        self.client.query_one(query, &[]).await.unwrap().get(0)
    }

    async fn read(&self) -> i64 {
        // pg_stat_statements counts as statements finish; the cumulative statistics reach
        // pg_stat_database only when a backend flushes them, within 10 s of going idle.
        let settle = if self.source.contains("xact_commit") {
            11_000
        } else {
            500
        };
        tokio::time::sleep(Duration::from_millis(settle)).await;
        // This counter's own reads (one here, and the `before` one) are not the server's.
        let own = if self.source.contains("xact_commit") {
            2
        } else {
            0
        };
        self.now().await - self.before - own
    }
}

/// Commands Redis ran under `INFO commandstats`, without the counter's own.
struct RedisCounter {
    connection: redis::aio::MultiplexedConnection,
}

impl RedisCounter {
    async fn start(_prefix: &str) -> Self {
        let url = std::env::var("SOLOTAB_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let client = redis::Client::open(url).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut connection)
            .await
            .unwrap();
        Self { connection }
    }

    async fn read(&self) -> u64 {
        let mut connection = self.connection.clone();
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut connection)
            .await
            .unwrap();
        info.lines()
            .filter_map(|line| line.strip_prefix("cmdstat_"))
            .filter(|line| !line.starts_with("info:") && !line.starts_with("config|"))
            .filter_map(|line| {
                let calls = line.split("calls=").nth(1)?.split(',').next()?;
                calls.parse::<u64>().ok()
            })
            .sum()
    }
}

/// 3: takeover latency with the old tab's channel on the same and on the other instance.
async fn takeovers(sizes: &Sizes) {
    println!(
        "Takeover latency (\"Use here\" sent -> the old tab's channel has `ended`), {} rounds of \
         {} of each, alternating, then {} store round trips (`SELECT 1` / `PING`) per round:\n",
        sizes.rounds, sizes.takeovers, sizes.round_trips
    );
    println!(
        "| registry in | same instance p99 (ms) | other instance p99 (ms) | store round trip p99 (ms) | (other - same) / round trip | target <= 3 |"
    );
    println!("|---|---|---|---|---|---|");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for backend in [Backend::Postgres, Backend::Redis] {
        let deployment = Deployment::new(backend).await;
        let (a, b) = (deployment.instance().await, deployment.instance().await);
        let client = reqwest::Client::new();
        let base_a = format!("http://{a}");
        register(&client, &base_a, "bench").await;
        // The browser that may "Use here", signed in through A.
        let device = login_with_device(&client, &base_a, "bench").await;
        let (mut same_p99, mut other_p99, mut trip_p99, mut excesses) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..sizes.rounds {
            let (mut same, mut other) = (Vec::new(), Vec::new());
            for n in 0..sizes.takeovers * 2 {
                let by = if n % 2 == 0 { a } else { b };
                let took = takeover(&client, a, by, &device).await;
                if by == a {
                    same.push(took)
                } else {
                    other.push(took)
                }
            }
            let trips = store_round_trips(backend, &deployment, sizes.round_trips).await;
            let (same, other, trip) = (
                ms(percentile(&same, 0.99)),
                ms(percentile(&other, 0.99)),
                ms(percentile(&trips, 0.99)),
            );
            excesses.push((other - same).max(0.0) / trip);
            same_p99.push(same);
            other_p99.push(other);
            trip_p99.push(trip);
        }
        let excess = median(&excesses);
        println!(
            "| {} | {:.2} | {:.2} | {:.3} | **{:.1}** ({}) | {} |",
            backend.name(),
            median(&same_p99),
            median(&other_p99),
            median(&trip_p99),
            excess,
            spread(&excesses),
            if excess <= 3.0 { "met" } else { "missed" }
        );
    }
    println!("\n(medians of the per-round figures; spread: lowest-highest round)\n");
}

/// One takeover: a fresh old tab with its channel on `a`, then "Use here" through `by`;
/// how long until the old tab's channel has `ended`.
async fn takeover(
    client: &reqwest::Client,
    a: SocketAddr,
    by: SocketAddr,
    device: &str,
) -> Duration {
    let uid = use_here(client, a, device).await;
    let mut channel = open_channel(a, &format!("http://{a}"), &uid).await;
    expect(&mut channel, "active").await;
    let started = Instant::now();
    let (_, ended) = tokio::join!(use_here(client, by, device), async {
        assert!(expect(&mut channel, "ended").await, "the old tab was told");
        started.elapsed()
    });
    ended
}

async fn store_round_trips(
    backend: Backend,
    deployment: &Deployment,
    count: usize,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(count);
    if backend == Backend::Redis {
        let url = std::env::var("SOLOTAB_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let mut connection = redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let key = format!("{}probe", deployment.redis_prefix);
        let _: () = connection.set(&key, 1).await.unwrap();
        for _ in 0..count {
            let started = Instant::now();
            let () = redis::cmd("PING")
                .query_async(&mut connection)
                .await
                .unwrap();
            times.push(started.elapsed());
        }
        let _: () = connection.del(&key).await.unwrap();
    } else {
        let url = std::env::var("SOLOTAB_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let statement = client.prepare("SELECT 1").await.unwrap();
        for _ in 0..count {
            let started = Instant::now();
            client.query_one(&statement, &[]).await.unwrap();
            times.push(started.elapsed());
        }
    }
    times
}

/// Logs in and returns the device cookie (`name=value`) the login set.
async fn login_with_device(client: &reqwest::Client, base: &str, name: &str) -> String {
    let reply = client
        .post(format!("{base}/api/login"))
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = reply.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// "Use here" on `addr` for the device's account: a fresh UID, no password hash.
async fn use_here(client: &reqwest::Client, addr: SocketAddr, device: &str) -> String {
    let reply: Value = client
        .post(format!("http://{addr}/api/use-here"))
        .header("cookie", device)
        .header("origin", format!("http://{addr}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply["uid"]
        .as_str()
        .expect("use here succeeded")
        .to_owned()
}
