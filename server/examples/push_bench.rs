//! The push channel's costs, on loopback, as ratios to baselines measured in the same run.
//!
//! Run by `./dev.sh bench` (or `./dev.sh bench --quick`), which builds in release mode and
//! raises the open-file limit first. It starts the real `server` binary (beside this
//! example in `target/release`) twice on one fresh database:
//!
//! 1. memory of N idle keep-alive HTTP connections (the baseline), then the server exits;
//! 2. memory of N idle push channels; GET /api/me p99 (the baseline for latency); takeover
//!    latency (login answered -> the old tab's channel has `ended`); takeover cost with 10
//!    and with N open channels, in alternating rounds; and delivery (`ended` per takeover)
//!    over many takeovers while a quarter of the old tabs' channels reconnect during them.
//!
//! It prints a Markdown section for docs/BENCHMARKS.md. Nothing here asserts a time.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Channel, expect, login, open_channel, percentile, register};

/// The server's allocator (see `support::ServerAllocator`).
#[global_allocator]
static GLOBAL: support::ServerAllocator = support::SERVER_ALLOCATOR;

/// Channels per active UID (the server allows four).
const PER_UID: usize = 4;

struct Sizes {
    channels: usize,
    delivery: usize,
    takeovers: usize,
    me_requests: usize,
    scale_rounds: usize,
    per_round: usize,
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = if quick {
        Sizes {
            channels: 200,
            delivery: 200,
            takeovers: 50,
            me_requests: 200,
            scale_rounds: 2,
            per_round: 20,
        }
    } else {
        Sizes {
            channels: 10_000,
            delivery: 10_000,
            takeovers: 1_000,
            me_requests: 1_000,
            scale_rounds: 3,
            per_round: 100,
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let accounts = sizes.channels / PER_UID;

    // Phase 1: accounts, and the keep-alive baseline.
    let server = Server::start(&db);
    let client = reqwest::Client::new();
    eprintln!("registering {accounts} accounts and signing each in (argon2: takes a while)");
    let mut uids = Vec::with_capacity(accounts);
    for chunk in (0..accounts).collect::<Vec<_>>().chunks(4) {
        let logins = chunk.iter().map(|i| {
            let (client, base) = (&client, &server.base);
            async move {
                let name = format!("bench{i}");
                register(client, base, &name).await;
                login(client, base, &name).await
            }
        });
        uids.extend(futures_util::future::join_all(logins).await);
    }
    let before = server.rss_kib();
    let keep_alive: Vec<TcpStream> = (0..sizes.channels)
        .map(|_| idle_http(&server.addr))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let with_keep_alive = server.rss_kib();
    drop(keep_alive);
    server.stop();

    // Phase 2: the same sessions, loaded by a fresh process.
    let server = Server::start(&db);
    let origin = server.base.clone();
    let baseline = server.rss_kib();
    let mut idle = open_channels(&server, &origin, &uids).await;
    std::thread::sleep(Duration::from_millis(500));
    let with_channels = server.rss_kib();
    let per_keep_alive = (with_keep_alive - before) as f64 * 1024.0 / sizes.channels as f64;
    let per_channel = (with_channels - baseline) as f64 * 1024.0 / sizes.channels as f64;

    // GET /api/me p99: the latency baseline.
    let probe = uids[0].clone();
    let mut me = Vec::with_capacity(sizes.me_requests);
    for _ in 0..sizes.me_requests {
        let started = Instant::now();
        let reply = client
            .get(format!("{}/api/me", server.base))
            .header("x-tab-uid", &probe)
            .send()
            .await
            .unwrap();
        assert!(reply.status().is_success());
        reply.bytes().await.unwrap();
        me.push(started.elapsed());
    }

    // Takeover latency with N channels open, on an account of its own.
    register(&client, &server.base, "taken").await;
    let mut stats = Takeovers::default();
    let mut tab = login(&client, &server.base, "taken").await;
    for _ in 0..sizes.takeovers {
        tab = takeover(&client, &server, &origin, &tab, &mut stats).await;
    }

    // Takeover cost with 10 open channels against N, in alternating rounds.
    let mut ratios = Vec::new();
    let (mut few_all, mut many_all) = (Vec::new(), Vec::new());
    for _ in 0..sizes.scale_rounds {
        idle.truncate(10);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut few = Takeovers::default();
        for _ in 0..sizes.per_round {
            tab = takeover(&client, &server, &origin, &tab, &mut few).await;
        }
        idle.extend(
            open_channels(&server, &origin, &uids)
                .await
                .into_iter()
                .skip(10),
        );
        let mut many = Takeovers::default();
        for _ in 0..sizes.per_round {
            tab = takeover(&client, &server, &origin, &tab, &mut many).await;
        }
        ratios.push(median(&few.total) / median(&many.total));
        few_all.extend(few.total.iter().copied());
        many_all.extend(many.total.iter().copied());
        stats.merge(few);
        stats.merge(many);
    }
    let open = idle.len();

    // Delivery with reconnecting channels, N channels open.
    eprintln!("delivery: {} takeovers", sizes.delivery);
    let churn = Instant::now();
    let workers = (0..DELIVERY_WORKERS).map(|w| {
        let (client, server, origin) = (&client, &server, &origin);
        async move {
            let name = format!("churn{w}");
            register(client, &server.base, &name).await;
            let mut tally = Delivery::default();
            let mut tab = login(client, &server.base, &name).await;
            let mut ws = open_channel(&server.addr, origin, &tab).await;
            expect(&mut ws, "active").await;
            for n in (w..sizes.delivery).step_by(DELIVERY_WORKERS) {
                let reconnect = n % 4 == 0;
                let (new, delivered) = if reconnect {
                    // The old tab's channel drops and comes back while the login is on its
                    // way: its hello may land before or after the takeover.
                    drop(ws);
                    let (new, delivered) =
                        tokio::join!(login(client, &server.base, &name), async {
                            let mut again = open_channel(&server.addr, origin, &tab).await;
                            within(expect(&mut again, "ended")).await
                        });
                    tally.reconnects += 1;
                    (new, delivered)
                } else {
                    tokio::join!(
                        login(client, &server.base, &name),
                        within(expect(&mut ws, "ended"))
                    )
                };
                tally.takeovers += 1;
                tally.delivered += usize::from(delivered);
                tab = new;
                ws = open_channel(&server.addr, origin, &tab).await;
                expect(&mut ws, "active").await;
            }
            tally
        }
    });
    let delivery = futures_util::future::join_all(workers)
        .await
        .into_iter()
        .fold(Delivery::default(), |a, b| Delivery {
            takeovers: a.takeovers + b.takeovers,
            delivered: a.delivered + b.delivered,
            reconnects: a.reconnects + b.reconnects,
        });
    let churn = churn.elapsed();
    drop(idle);
    server.stop();

    let me_p99 = percentile(&me, 0.99);
    let push_p50 = percentile(&stats.after_response, 0.50);
    let push_p99 = percentile(&stats.after_response, 0.99);
    let login_p99 = percentile(&stats.total, 0.99);
    ratios.sort_by(f64::total_cmp);
    println!(
        "### Push channel ({})\n",
        if quick { "quick" } else { "full" }
    );
    println!("Release build, loopback, one client process; {open} channels open at the end.\n");
    println!("| measure | figure |");
    println!("|---|---|");
    println!(
        "| `GET /api/me` p99 ({} sequential requests) | {} |",
        sizes.me_requests,
        ms(me_p99)
    );
    println!(
        "| takeover push latency (login answered -> `ended` on the old channel), p50 / p99, {} takeovers | {} / {} |",
        stats.total.len(),
        ms(push_p50),
        ms(push_p99)
    );
    println!(
        "| `ended` arrived before the login's answer | {} of {} |",
        stats.ended_first,
        stats.total.len()
    );
    println!(
        "| **ratio: push p99 / `GET /api/me` p99** (target <= 3) | **{:.2}** |",
        secs(push_p99) / secs(me_p99)
    );
    println!(
        "| login request -> `ended` received, p99 (includes argon2id) | {} |",
        ms(login_p99)
    );
    println!(
        "| delivery in the latency runs: `ended` received / takeovers | {} / {} = {:.3} |",
        stats.delivered,
        stats.total.len(),
        stats.delivered as f64 / stats.total.len() as f64
    );
    println!(
        "| **delivery under reconnects**: `ended` / takeovers; {} of them with the old tab's \
         channel dropped and reconnecting during the takeover; {} channels open; {:.0} s \
         (target 1.0) | **{} / {} = {:.4}** |",
        delivery.reconnects,
        open,
        churn.as_secs_f64(),
        delivery.delivered,
        delivery.takeovers,
        delivery.delivered as f64 / delivery.takeovers as f64
    );
    println!(
        "| takeover cost, median with 10 / with {} open channels | {} / {} |",
        sizes.channels,
        ms(secs_to(median(&few_all))),
        ms(secs_to(median(&many_all)))
    );
    println!(
        "| **ratio: cost(10) / cost({})**, median of {} rounds (min-max) (target >= 0.9) | **{:.2}** ({:.2}-{:.2}) |",
        sizes.channels,
        ratios.len(),
        support::median(&ratios),
        ratios[0],
        ratios[ratios.len() - 1]
    );
    println!(
        "| server RSS per idle keep-alive HTTP connection ({} connections) | {:.0} bytes |",
        sizes.channels, per_keep_alive
    );
    println!(
        "| server RSS per idle push channel ({} channels) | {:.0} bytes |",
        sizes.channels, per_channel
    );
    println!(
        "| **ratio: channel / keep-alive connection** (target <= 2) | **{:.2}** |",
        per_channel / per_keep_alive
    );
}

/// Concurrent takeovers in the delivery phase (one account each).
const DELIVERY_WORKERS: usize = 4;

#[derive(Default)]
struct Delivery {
    takeovers: usize,
    delivered: usize,
    reconnects: usize,
}

/// `ended` must come within five seconds to count as delivered.
async fn within(delivered: impl std::future::Future<Output = bool>) -> bool {
    tokio::time::timeout(Duration::from_secs(5), delivered)
        .await
        .unwrap_or(false)
}

#[derive(Default)]
struct Takeovers {
    /// Login request sent -> `ended` received on the old channel.
    total: Vec<Duration>,
    /// Login answered -> `ended` received (zero when `ended` came first).
    after_response: Vec<Duration>,
    ended_first: usize,
    delivered: usize,
}

impl Takeovers {
    fn merge(&mut self, other: Takeovers) {
        self.total.extend(other.total);
        self.after_response.extend(other.after_response);
        self.ended_first += other.ended_first;
        self.delivered += other.delivered;
    }
}

/// Opens a channel for `tab`, logs in again, and times how the old channel hears of it.
async fn takeover(
    client: &reqwest::Client,
    server: &Server,
    origin: &str,
    tab: &str,
    stats: &mut Takeovers,
) -> String {
    let mut old = open_channel(&server.addr, origin, tab).await;
    expect(&mut old, "active").await;
    let started = Instant::now();
    let login = login(client, &server.base, "taken");
    let ended = expect(&mut old, "ended");
    let ((new, answered), ended_at) = tokio::join!(
        async {
            let uid = login.await;
            (uid, Instant::now())
        },
        async {
            let delivered = ended.await;
            (delivered, Instant::now())
        }
    );
    let (delivered, ended_at) = ended_at;
    if delivered {
        stats.delivered += 1;
    }
    stats.total.push(ended_at - started);
    if ended_at < answered {
        stats.ended_first += 1;
        stats.after_response.push(Duration::ZERO);
    } else {
        stats.after_response.push(ended_at - answered);
    }
    new
}

/// Opens PER_UID channels for every UID and waits until each is active.
async fn open_channels(server: &Server, origin: &str, uids: &[String]) -> Vec<Channel> {
    let mut open = Vec::with_capacity(uids.len() * PER_UID);
    for batch in uids.chunks(64) {
        let batch = batch
            .iter()
            .flat_map(|uid| std::iter::repeat_n(uid, PER_UID))
            .map(|uid| async move {
                let mut ws = open_channel(&server.addr, origin, uid).await;
                expect(&mut ws, "active").await;
                ws
            });
        open.extend(futures_util::future::join_all(batch).await);
    }
    open
}

/// A keep-alive HTTP connection that has had one answer and now sits idle.
fn idle_http(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: keep-alive\r\n\r\n"
    )
    .unwrap();
    let mut buf = [0; 512];
    let n = stream.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    stream
}

struct Server {
    child: Child,
    base: String,
    addr: String,
}

impl Server {
    fn start(db: &Path) -> Self {
        let mut child = Command::new(server_binary())
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .env("SOLOTAB_DB", db)
            // Thousands of accounts from one address: the limit is not what is measured.
            .env("SOLOTAB_MAX_REGISTRATIONS_PER_HOUR", "0")
            // Ten thousand connections from one address are the point here.
            .env("SOLOTAB_MAX_CONNECTIONS", "30000")
            .env("SOLOTAB_MAX_CONNECTIONS_PER_IP", "30000")
            .env("SOLOTAB_LOG", "warn,solotab::startup=info")
            .env("NO_COLOR", "1")
            .env_remove("LEPTOS_OUTPUT_NAME")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("target/release/server exists (cargo build --release -p server)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the server says where it listens")
                .unwrap();
            if let Some(at) = line.find("listening on http://") {
                break line[at + "listening on http://".len()..].trim().to_owned();
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            base: format!("http://{addr}"),
            addr,
        }
    }

    fn rss_kib(&self) -> i64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// SIGTERM, then wait: a graceful stop, so the next start finds the lock free.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().join("server")
}

fn median(samples: &[Duration]) -> f64 {
    secs(percentile(samples, 0.5))
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn secs_to(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
