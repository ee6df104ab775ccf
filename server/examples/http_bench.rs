//! What the check costs a request, and what logins cost, as ratios to baselines measured in
//! the same run. Prints Markdown for docs/BENCHMARKS.md.
//!
//! 1. Request overhead: one server answers the same trivial handler three ways (no
//!    extractor, a no-op extractor, the real `ActiveTab` check with N sessions loaded), and
//!    `wrk` (Debian) drives each in interleaved rounds: peak rps, then p99 at half the bare
//!    route's peak from an open-loop paced client. The same check with 1,000 sessions, each
//!    server's check over its own no-op route, shows whether it slows as accounts grow.
//!    Each run also counts the CPU time this process (the servers) and wrk spent per
//!    request: on two cores that wrk shares with the servers, rps moves with how the
//!    scheduler interleaves them; CPU per request less so.
//! 2. Logins: a login's p50 against a raw argon2id verify with the same parameters; and
//!    `GET /api/me`'s p99 with and without a flood of logins (4 per core, half of them wrong).
//!
//! `cargo run --release -p server --example http_bench -- [--quick] [--only overhead|logins]
//! [--rounds N]` (`./dev.sh bench`).

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::routing::get;
use clap::Parser;
use solotab::http::{ActiveTab, Disclosure};
use solotab::registry::Registry;
use support::{Population, cpu_seconds, median, percentile, registry_of, spread};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The server's allocator (see `support::ServerAllocator`).
#[global_allocator]
static GLOBAL: support::ServerAllocator = support::SERVER_ALLOCATOR;

const PASSWORD: &str = "correct horse battery";

struct Sizes {
    sessions: usize,
    wrk_secs: u64,
    rounds: usize,
    paced_secs: u64,
    logins: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `--name value`, if given.
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let quick = args.iter().any(|a| a == "--quick");
    let mut sizes = if quick {
        Sizes {
            sessions: 100_000,
            wrk_secs: 1,
            rounds: 2,
            paced_secs: 2,
            logins: 10,
        }
    } else {
        Sizes {
            sessions: 1_000_000,
            wrk_secs: 3,
            rounds: 8,
            paced_secs: 5,
            logins: 40,
        }
    };
    // `--rounds N`: more interleaved rounds, for a narrower spread.
    if let Some(rounds) = value("--rounds") {
        sizes.rounds = rounds.parse().expect("--rounds takes a number");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // `--only overhead` or `--only logins` runs one part.
    let only = value("--only");
    let wanted = |part: &str| only.is_none_or(|o| o == part);
    runtime.block_on(async {
        if wanted("overhead") {
            overhead(&sizes).await;
        }
        if wanted("logins") {
            logins(&sizes).await;
        }
    });
}

/// Behind one `Arc`, as the server's `AppState` is: axum clones the state for every request,
/// and a clone of each part would be a dozen reference counts that both cores write.
#[derive(Clone)]
struct BenchState(Arc<BenchServices>);

struct BenchServices {
    registry: Registry,
    metrics: solotab::metrics::Metrics,
    history: solotab::history::History,
}

impl FromRef<BenchState> for solotab::history::History {
    fn from_ref(state: &BenchState) -> Self {
        state.0.history.clone()
    }
}

impl FromRef<BenchState> for solotab::http::Observer {
    fn from_ref(state: &BenchState) -> Self {
        // Enforcing: an observer is asked only about refused requests, and none are sent.
        solotab::http::Observer::new(
            solotab::store::Mode::Enforce,
            Arc::new(solotab::store::MemoryStore::new()),
            state.0.metrics.clone(),
        )
    }
}

impl FromRef<BenchState> for solotab::proxies::TrustedProxies {
    fn from_ref(_: &BenchState) -> Self {
        solotab::proxies::TrustedProxies::default()
    }
}

impl FromRef<BenchState> for solotab::metrics::Metrics {
    fn from_ref(state: &BenchState) -> Self {
        state.0.metrics.clone()
    }
}

impl AsRef<Registry> for BenchState {
    fn as_ref(&self) -> &Registry {
        &self.0.registry
    }
}

impl FromRef<BenchState> for Disclosure {
    fn from_ref(_: &BenchState) -> Self {
        Disclosure::default()
    }
}

/// An extractor that does nothing: the cost of being an extractor at all.
struct NoOp;

impl<S: Send + Sync> FromRequestParts<S> for NoOp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(_: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(NoOp)
    }
}

fn router(registry: Registry) -> Router {
    Router::new()
        .route("/bare", get(|| async { "ok" }))
        .route("/noop", get(|_: NoOp| async { "ok" }))
        .route("/checked", get(|_: ActiveTab| async { "ok" }))
        .with_state(BenchState(Arc::new(BenchServices {
            registry,
            metrics: solotab::metrics::Metrics::new(),
            // Only refused requests are recorded; the benchmark sends none.
            history: solotab::history::History::new(Arc::new(solotab::store::MemoryStore::new())),
        })))
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A wrk script that sends one of `uids` (chosen at random) with every request, so that
/// every route gets the same request and the check walks the whole map.
fn wrk_script(population: &Population, dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let n = population.uids.len();
    // Always 10,000 entries (repeating a smaller population), so that wrk does the same work
    // for every server and only the server differs.
    let picked: Vec<String> = (0..10_000)
        .map(|i| format!("\"{}\"", population.uids[(i * 7_919) % n].expose()))
        .collect();
    let script = format!(
        "local uids = {{{}}}\nrequest = function()\n  return wrk.format(nil, nil, {{[\"x-tab-uid\"] = uids[math.random(#uids)]}})\nend\n",
        picked.join(",")
    );
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    path
}

struct WrkResult {
    rps: f64,
    /// CPU microseconds per request: of this process (the servers), and of wrk.
    server_us: f64,
    client_us: f64,
}

fn wrk(url: &str, script: &std::path::Path, secs: u64) -> WrkResult {
    let (server_before, client_before) = cpu_seconds();
    let output = Command::new("wrk")
        .args(["-t1", "-c32", &format!("-d{secs}s"), "-s"])
        .arg(script)
        .arg(url)
        .output()
        .expect("wrk is installed (./dev.sh bench installs it)");
    let text = String::from_utf8_lossy(&output.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("wrk said:\n{text}"));
    assert!(
        !text.contains("Non-2xx"),
        "some requests were refused:\n{text}"
    );
    let (server_after, client_after) = cpu_seconds();
    // "  123456 requests in 3.00s, ...": the exact count the CPU time was spent on.
    let requests: f64 = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("wrk said:\n{text}"));
    let per_request = |seconds: f64| seconds * 1e6 / requests;
    WrkResult {
        rps,
        server_us: per_request(server_after - server_before),
        client_us: per_request(client_after - client_before),
    }
}

async fn overhead(sizes: &Sizes) {
    let population = Population::new(sizes.sessions);
    let small = Population::new(1_000);
    let big = serve(router(registry_of(&population).await)).await;
    let little = serve(router(registry_of(&small).await)).await;
    let dir = std::env::temp_dir().join(format!("solotab-http-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big_script = wrk_script(&population, &dir, "big.lua");
    let small_script = wrk_script(&small, &dir, "small.lua");

    let routes = [
        ("bare", format!("http://{big}/bare"), &big_script),
        ("no-op extractor", format!("http://{big}/noop"), &big_script),
        (
            "ActiveTab check",
            format!("http://{big}/checked"),
            &big_script,
        ),
        (
            "ActiveTab check, 1,000 sessions",
            format!("http://{little}/checked"),
            &small_script,
        ),
        // The 1,000-session server's own baseline: the scale ratio compares each server's
        // check with its own no-op route, as a bare route answers faster there too (wrk
        // spends more per request picking among 10,000 distinct UIDs than among 1,000).
        (
            "no-op extractor, 1,000 sessions",
            format!("http://{little}/noop"),
            &small_script,
        ),
    ];
    let mut rps: Vec<Vec<f64>> = vec![Vec::new(); routes.len()];
    let mut server_us: Vec<Vec<f64>> = vec![Vec::new(); routes.len()];
    let mut client_us: Vec<Vec<f64>> = vec![Vec::new(); routes.len()];
    for round in 0..sizes.rounds {
        // Every other round runs the routes in reverse, so that drift in the machine's speed
        // during a round favours no route.
        let mut order: Vec<usize> = (0..routes.len()).collect();
        if !round.is_multiple_of(2) {
            order.reverse();
        }
        for i in order {
            let (_, url, script) = &routes[i];
            let result = tokio::task::block_in_place(|| wrk(url, script, sizes.wrk_secs));
            rps[i].push(result.rps);
            server_us[i].push(result.server_us);
            client_us[i].push(result.client_us);
        }
    }
    let ratio = |a: usize, b: usize| -> Vec<f64> {
        rps[a].iter().zip(&rps[b]).map(|(x, y)| x / y).collect()
    };
    // Checked / no-op at 1 M sessions over the same at 1,000, per round: how much more the
    // check itself costs as sessions grow.
    let scale = |ratio: &dyn Fn(usize, usize) -> Vec<f64>| -> Vec<f64> {
        ratio(2, 1)
            .iter()
            .zip(&ratio(3, 4))
            .map(|(big, little)| big / little)
            .collect()
    };
    // Requests per CPU-second of the server, route a / route b: what the rps ratio would be
    // if the servers had their cores to themselves (wrk shares them here).
    let cpu_ratio = |a: usize, b: usize| -> Vec<f64> {
        server_us[b]
            .iter()
            .zip(&server_us[a])
            .map(|(x, y)| x / y)
            .collect()
    };

    // p99 at half the bare route's peak, open loop, in interleaved rounds.
    let rate = median(&rps[0]) / 2.0;
    let uids: Vec<String> = (0..1_000)
        .map(|i| population.uids[(i * 7_919) % population.uids.len()].expose())
        .collect();
    let mut p99 = [Vec::new(), Vec::new()];
    for round in 0..sizes.rounds {
        let paths = if round.is_multiple_of(2) {
            [(0, "/bare"), (1, "/checked")]
        } else {
            [(1, "/checked"), (0, "/bare")]
        };
        for (i, path) in paths {
            let latencies = paced(big, path, &uids, rate, sizes.paced_secs).await;
            p99[i].push(percentile(&latencies, 0.99).as_secs_f64() * 1e3);
        }
    }
    let p99_ratio: Vec<f64> = p99[1].iter().zip(&p99[0]).map(|(c, b)| c / b).collect();

    println!(
        "### Request overhead ({} sessions loaded; wrk -t1 -c32, {} s per run, {} interleaved rounds)\n",
        sizes.sessions, sizes.wrk_secs, sizes.rounds
    );
    // Whether the allocator got the registry's tables huge pages (see src/main.rs).
    println!(
        "Resident: {} MiB, of which {} MiB in transparent huge pages.\n",
        support::rss() >> 20,
        support::huge_pages() >> 20
    );
    println!(
        "| route | median rps | spread | server CPU us / request (spread) | wrk CPU us / request |"
    );
    println!("|---|---|---|---|---|");
    for (i, (name, _, _)) in routes.iter().enumerate() {
        println!(
            "| {name} | {:.0} | {} | {:.2} ({}) | {:.2} |",
            median(&rps[i]),
            spread(&rps[i]),
            median(&server_us[i]),
            spread(&server_us[i]),
            median(&client_us[i]),
        );
    }
    println!(
        "\n- checked / no-op: **{:.3}** ({}; target >= 0.95)\n- checked / bare: **{:.3}** ({}; target >= 0.85)\n- checked at {} / at 1,000 sessions, each over its server's no-op route: **{:.3}** ({}; target >= 0.95); rps alone: {:.3} ({}); no-op at {} / at 1,000: {:.3}\n- p99 at {:.0} rps (half the bare peak), open loop, {} s per run: bare {:.2} ms, checked {:.2} ms; checked / bare: **{:.2}** ({}; target <= 1.2)\n",
        median(&ratio(2, 1)),
        spread(&ratio(2, 1)),
        median(&ratio(2, 0)),
        spread(&ratio(2, 0)),
        sizes.sessions,
        median(&scale(&ratio)),
        spread(&scale(&ratio)),
        median(&ratio(2, 3)),
        spread(&ratio(2, 3)),
        sizes.sessions,
        median(&ratio(1, 4)),
        rate,
        sizes.paced_secs,
        median(&p99[0]),
        median(&p99[1]),
        median(&p99_ratio),
        spread(&p99_ratio),
    );
    println!(
        "Requests per server CPU-second (the same runs, wrk's own CPU left out: the two-core \
         machine's scheduling of wrk against the servers moves it less than rps): checked / no-op \
         **{:.3}** ({}), checked / bare **{:.3}** ({}), checked at {} / at 1,000 sessions, \
         each over its no-op, **{:.3}** ({}).\n",
        median(&cpu_ratio(2, 1)),
        spread(&cpu_ratio(2, 1)),
        median(&cpu_ratio(2, 0)),
        spread(&cpu_ratio(2, 0)),
        sizes.sessions,
        median(&scale(&cpu_ratio)),
        spread(&scale(&cpu_ratio)),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends `rate` requests per second for `secs` seconds over 16 keep-alive connections, each
/// at its own fixed schedule; a latency is measured from when the request was due, so a slow
/// answer delays nothing and hides nothing (no coordinated omission).
async fn paced(
    addr: SocketAddr,
    path: &str,
    uids: &[String],
    rate: f64,
    secs: u64,
) -> Vec<Duration> {
    const CONNECTIONS: usize = 16;
    let interval = Duration::from_secs_f64(CONNECTIONS as f64 / rate);
    let per_connection = (rate * secs as f64 / CONNECTIONS as f64) as usize;
    let start = Instant::now() + Duration::from_millis(50);
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let requests: Vec<Vec<u8>> = (0..per_connection)
                .map(|i| {
                    let uid = &uids[(c * per_connection + i) % uids.len()];
                    format!("GET {path} HTTP/1.1\r\nHost: bench\r\nx-tab-uid: {uid}\r\n\r\n")
                        .into_bytes()
                })
                .collect();
            // Spread the connections' schedules over one interval.
            let offset = interval.mul_f64(c as f64 / CONNECTIONS as f64);
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let mut latencies = Vec::with_capacity(requests.len());
                let mut buffer = vec![0u8; 16 * 1024];
                for (i, request) in requests.iter().enumerate() {
                    let due = start + offset + interval * i as u32;
                    tokio::time::sleep_until(due.into()).await;
                    stream.write_all(request).await.unwrap();
                    read_response(&mut stream, &mut buffer).await;
                    latencies.push(due.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

/// Reads one HTTP/1.1 response with a Content-Length body; panics on anything but 200.
async fn read_response(stream: &mut TcpStream, buffer: &mut [u8]) {
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buffer[filled..]).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        filled += n;
        let text = &buffer[..filled];
        if let Some(end) = text.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&text[..end]).to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if filled >= end + 4 + length {
                return;
            }
        }
    }
}

async fn logins(sizes: &Sizes) {
    let dir = std::env::temp_dir().join(format!("solotab-login-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("solotab.db");
    // Failed logins are part of the flood: no throttle, so each one costs its hash.
    let config = solotab::config::Config::try_parse_from([
        "server",
        "--db",
        db.to_str().unwrap(),
        "--max-login-failures",
        "0",
        "--max-registrations-per-hour",
        "0",
    ])
    .unwrap();
    let state = solotab::startup::state(&config).await.unwrap();
    let listener = solotab::startup::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = solotab::startup::app(
        solotab::startup::leptos_options().unwrap(),
        state.clone(),
        config.request_timeout(),
    );
    tokio::spawn({
        let state = state.clone();
        async move {
            solotab::startup::serve(listener, app, &state, &config, std::future::pending()).await
        }
    });
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let flooders = 4 * cores;
    for n in 0..=flooders {
        let reply = client
            .post(format!("{base}/api/register"))
            .json(&serde_json::json!({"username": format!("user{n}"), "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 201);
    }
    let login =
        {
            let (client, base) = (client.clone(), base.clone());
            move |n: usize, password: &'static str| {
                let (client, base) = (client.clone(), base.clone());
                async move {
                    client
                .post(format!("{base}/api/login"))
                .json(&serde_json::json!({"username": format!("user{n}"), "password": password}))
                .send()
                .await
                .unwrap()
                .status()
                }
            }
        };

    // A login's p50 against a raw verify with the same parameters, interleaved one by one.
    let passwords = solotab::passwords::Passwords::new(1).unwrap();
    let hash = passwords.hash(PASSWORD.into()).await.unwrap();
    let mut login_ms = Vec::new();
    let mut verify_ms = Vec::new();
    for _ in 0..sizes.logins {
        let started = Instant::now();
        assert_eq!(login(0, PASSWORD).await, 200);
        login_ms.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        assert!(
            passwords
                .verify(PASSWORD.into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        verify_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }

    // GET /api/me's p99 alone, then during the flood, then alone again.
    let uid = {
        let reply = client
            .post(format!("{base}/api/login"))
            .json(&serde_json::json!({"username": "user0", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        reply.json::<serde_json::Value>().await.unwrap()["uid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let uids = vec![uid];
    let me_rate = 200.0;
    let quiet_before = paced_me(addr, &uids, me_rate, sizes.paced_secs).await;
    let flooding = Arc::new(AtomicBool::new(true));
    let mut flood = Vec::new();
    for n in 1..=flooders {
        let flooding = flooding.clone();
        let login = login.clone();
        flood.push(tokio::spawn(async move {
            let mut count = 0usize;
            while flooding.load(Ordering::Relaxed) {
                let password = if count.is_multiple_of(2) {
                    PASSWORD
                } else {
                    "wrong password"
                };
                let status = login(n, password).await;
                assert!(status == 200 || status == 401, "{status}");
                count += 1;
            }
            count
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = paced_me(addr, &uids, me_rate, sizes.paced_secs).await;
    flooding.store(false, Ordering::Relaxed);
    let mut flooded = 0;
    for task in flood {
        flooded += task.await.unwrap();
    }
    let quiet_after = paced_me(addr, &uids, me_rate, sizes.paced_secs).await;
    let quiet: Vec<Duration> = quiet_before.into_iter().chain(quiet_after).collect();
    let p99_quiet = percentile(&quiet, 0.99).as_secs_f64() * 1e3;
    let p99_flood = percentile(&during, 0.99).as_secs_f64() * 1e3;

    println!(
        "### Logins ({} sequential, then a flood of {flooders} concurrent login loops)\n",
        sizes.logins
    );
    println!("| | p50 ms | spread |");
    println!("|---|---|---|");
    println!(
        "| `POST /api/login` | {:.1} | {} |",
        median(&login_ms),
        spread(&login_ms)
    );
    println!(
        "| raw argon2id verify (m=19 MiB, t=2, p=1) | {:.1} | {} |",
        median(&verify_ms),
        spread(&verify_ms)
    );
    println!(
        "\n- login p50 / verify p50: **{:.2}** (target <= 1.15)\n- `GET /api/me` p99 at {me_rate:.0} rps: {p99_quiet:.2} ms alone, {p99_flood:.2} ms during {flooded} logins in {} s; during / alone: **{:.2}** (target <= 1.5)\n",
        median(&login_ms) / median(&verify_ms),
        sizes.paced_secs,
        p99_flood / p99_quiet,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

async fn paced_me(addr: SocketAddr, uids: &[String], rate: f64, secs: u64) -> Vec<Duration> {
    paced(addr, "/api/me", uids, rate, secs).await
}
