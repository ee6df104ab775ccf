//! What the enforcement core costs, as ratios to baselines measured in the same run: the
//! check against a bare `HashMap::get`, the registry's memory against a raw map, and start-up
//! against `sqlite3` reading the same rows. Prints Markdown for docs/BENCHMARKS.md.
//!
//! `cargo run --release -p server --example core_bench -- [--quick] [--sessions N]`
//! (`./dev.sh bench` runs it). Loopback and local files only; bounded in time.

mod support;

use futures_util::FutureExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use solotab::registry::Registry;
use solotab::store::SqliteStore;
use stats_alloc::{Region, StatsAlloc};
use support::{
    Population, SERVER_ALLOCATOR, ServerAllocator, median, raw_map, registry_of, rss, spread,
};

struct Options {
    sessions: usize,
    rounds: usize,
    /// Only this part (memory, lookups, start-up), if given.
    only: Option<String>,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let sessions = args
        .iter()
        .position(|a| a == "--sessions")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse().expect("--sessions takes a number"))
        .unwrap_or(if quick { 100_000 } else { 1_000_000 });
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    Options {
        sessions,
        rounds: if quick { 3 } else { 7 },
        only,
    }
}

fn main() {
    let options = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "### Core: check, memory, start-up ({} active + {} ended sessions, {} rounds)\n",
        options.sessions, options.sessions, options.rounds
    );
    let population = Population::new(options.sessions);
    let wanted = |part: &str| options.only.as_deref().is_none_or(|only| only == part);
    if wanted("memory") {
        runtime.block_on(memory(&population));
    }
    if wanted("lookups") {
        runtime.block_on(lookups(&population, options.rounds));
    }
    if wanted("start-up") {
        // The target's million sessions (half of them ended), then the whole population.
        let half = population.uids.len() / 2;
        runtime.block_on(start_up(&population, half, options.rounds));
        runtime.block_on(start_up(&population, population.uids.len(), options.rounds));
    }
}

/// Counts heap bytes (requested sizes), so that memory per session is exact; the server's own
/// allocator underneath, so that resident memory is laid out as the server's is.
#[global_allocator]
static GLOBAL: StatsAlloc<ServerAllocator> = StatsAlloc::new(SERVER_ALLOCATOR);

/// Heap bytes still allocated of those allocated since `region` began. (`stats_alloc`
/// counts a reallocation's growth in `bytes_allocated` and its shrinking in
/// `bytes_deallocated`; `bytes_reallocated` is the same change again, so it is not added.)
fn live(region: &Region<ServerAllocator>) -> i64 {
    let change = region.change();
    change.bytes_allocated as i64 - change.bytes_deallocated as i64
}

async fn memory(population: &Population) {
    let n = population.uids.len() as f64;
    // The baseline first, then the registry; each measured as the heap and the resident
    // memory it adds. The registry is loaded from a copy of the population that it consumes,
    // so what is left on the heap afterwards is the registry alone.
    let region = Region::new(&GLOBAL);
    let before = rss();
    let raw = raw_map(population);
    let (raw_heap, raw_rss) = (live(&region), rss().saturating_sub(before));
    drop(raw);

    let region = Region::new(&GLOBAL);
    let before = rss();
    let registry = registry_of(population).await;
    let (registry_heap, registry_rss) = (live(&region), rss().saturating_sub(before));
    let (active, ended) = registry
        .counts()
        .expect("a loaded registry keeps sessions in memory");
    assert_eq!(
        (active, ended),
        (population.uids.len(), population.uids.len())
    );
    drop(registry);

    println!("| memory | heap bytes | per active session | resident (RSS) growth |");
    println!("|---|---|---|---|");
    println!(
        "| raw `HashMap<u128, u64>`, {n} entries | {raw_heap} | {:.0} B per entry | {raw_rss} |",
        raw_heap as f64 / n
    );
    println!(
        "| registry, {n} active + {n} ended | {registry_heap} | {:.0} B ({:.0} B per UID, active or ended) | {registry_rss} |",
        registry_heap as f64 / n,
        registry_heap as f64 / n / 2.0
    );
    println!(
        "\nRegistry per active session / raw map per entry: heap **{:.2}**, resident **{:.2}** \
         (target <= 2); per UID kept (active or ended) / raw per entry: heap **{:.2}**. (The \
         registry's resident growth would also hold memory the allocator kept from the loading, \
         if any: an upper bound.)\n",
        registry_heap as f64 / raw_heap as f64,
        registry_rss as f64 / raw_rss as f64,
        registry_heap as f64 / 2.0 / raw_heap as f64
    );
    spring_session_in_redis();
}

/// What one Spring-Session-style session costs in Redis (`MEMORY USAGE` of its hash), if a
/// Redis answers on 127.0.0.1:6379. The hash holds what Spring Session's Redis repository
/// writes with its default JDK serialisation: three serialised numbers and a serialised
/// security context of about a kilobyte.
fn spring_session_in_redis() {
    use std::io::{BufRead, BufReader, Write};
    let Ok(stream) = std::net::TcpStream::connect("127.0.0.1:6379") else {
        println!("(no Redis on 127.0.0.1:6379: the Spring Session comparison is skipped)\n");
        return;
    };
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut command = |args: &[&[u8]]| -> String {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        writer.write_all(&out).unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        line.trim().to_owned()
    };
    let key = format!("spring:session:sessions:{}", uuid::Uuid::new_v4());
    let number = vec![0xACu8; 82]; // a JDK-serialised java.lang.Long
    let context = vec![0xACu8; 1024]; // a JDK-serialised SecurityContextImpl
    let reply = command(&[
        b"HSET",
        key.as_bytes(),
        b"creationTime",
        &number,
        b"lastAccessedTime",
        &number,
        b"maxInactiveInterval",
        &number[..81],
        b"sessionAttr:SPRING_SECURITY_CONTEXT",
        &context,
    ]);
    assert!(reply.starts_with(':'), "HSET answered {reply}");
    let usage = command(&[b"MEMORY", b"USAGE", key.as_bytes()]);
    command(&[b"DEL", key.as_bytes()]);
    println!(
        "A Spring-Session-style session hash in Redis: `MEMORY USAGE` = {} B (one hash; Spring \
         Session also keeps an expiry key and index entries per session).\n",
        usage.trim_start_matches(':')
    );
}

/// `Registry::check` against `HashMap::get` on the same keys, in interleaved rounds.
async fn lookups(population: &Population, rounds: usize) {
    let registry = registry_of(population).await;
    let raw = raw_map(population);
    // The same map behind the lock the registry takes: how much of the gap is the lock.
    let locked = std::sync::RwLock::new(raw_map(population));
    // A fixed pseudo-random order, so that neither side is helped by the insertion order.
    let order: Vec<usize> = {
        let n = population.uids.len();
        let step = 7_919; // a prime that does not divide n in practice
        (0..n.min(200_000)).map(|i| (i * step) % n).collect()
    };
    let mut check_ns = Vec::new();
    let mut get_ns = Vec::new();
    let mut digest_ns = Vec::new();
    let mut locked_ns = Vec::new();
    let mut hashed_ns = Vec::new();
    let mut ratios = Vec::new();
    let mut check_both_ns = Vec::new();
    let mut locked_both_ns = Vec::new();
    for _ in 0..rounds {
        // What every check computes first: the SHA-256 that memory is keyed by.
        let started = Instant::now();
        for &i in &order {
            std::hint::black_box(population.uids[i].digest());
        }
        digest_ns.push(started.elapsed().as_nanos() as f64 / order.len() as f64);

        let started = Instant::now();
        let mut found = 0usize;
        for &i in &order {
            // `check` is async (a shared store is read over the network); in memory it
            // never waits, so one poll answers it, as it does inside the server's extractor.
            let checked = registry.check(&population.uids[i]).now_or_never();
            found += std::hint::black_box(checked).is_some_and(|c| c.is_ok()) as usize;
        }
        let check = started.elapsed().as_nanos() as f64 / order.len() as f64;
        assert_eq!(found, order.len());

        let started = Instant::now();
        let mut found = 0usize;
        for &i in &order {
            found += std::hint::black_box(raw.get(&population.numbers[i])).map_or(0, |_| 1);
        }
        let get = started.elapsed().as_nanos() as f64 / order.len() as f64;
        assert_eq!(found, order.len());

        let started = Instant::now();
        let mut found = 0usize;
        for &i in &order {
            let map = locked.read().unwrap_or_else(|p| p.into_inner());
            found += std::hint::black_box(map.get(&population.numbers[i])).map_or(0, |_| 1);
        }
        locked_ns.push(started.elapsed().as_nanos() as f64 / order.len() as f64);
        assert_eq!(found, order.len());

        // And with the SHA-256 computed before each bare `get` (its result unused).
        let started = Instant::now();
        let mut found = 0usize;
        for &i in &order {
            std::hint::black_box(population.uids[i].digest());
            found += std::hint::black_box(raw.get(&population.numbers[i])).map_or(0, |_| 1);
        }
        hashed_ns.push(started.elapsed().as_nanos() as f64 / order.len() as f64);
        assert_eq!(found, order.len());
        check_ns.push(check);
        get_ns.push(get);
        ratios.push(check / get);

        // Two threads at once, as two cores serving requests: what sharing the lock costs.
        let runtime = tokio::runtime::Handle::current();
        let both = |look: &(dyn Fn(usize) -> bool + Sync)| -> f64 {
            let per_thread: Vec<f64> = std::thread::scope(|scope| {
                let threads: Vec<_> = (0..2)
                    .map(|t| {
                        let order = &order;
                        let runtime = runtime.clone();
                        scope.spawn(move || {
                            let _context = runtime.enter();
                            // Each thread its own keys: the same ones would share cache lines.
                            let mine: Vec<usize> =
                                order.iter().skip(t).step_by(2).copied().collect();
                            let started = Instant::now();
                            let mut found = 0usize;
                            for &i in &mine {
                                found += look(i) as usize;
                            }
                            let elapsed = started.elapsed();
                            assert_eq!(found, mine.len());
                            elapsed.as_nanos() as f64 / mine.len() as f64
                        })
                    })
                    .collect();
                threads.into_iter().map(|t| t.join().unwrap()).collect()
            });
            per_thread.iter().sum::<f64>() / per_thread.len() as f64
        };
        check_both_ns.push(both(&|i| {
            let checked = registry.check(&population.uids[i]).now_or_never();
            std::hint::black_box(checked).is_some_and(|c| c.is_ok())
        }));
        locked_both_ns.push(both(&|i| {
            let map = locked.read().unwrap_or_else(|p| p.into_inner());
            std::hint::black_box(map.get(&population.numbers[i])).is_some()
        }));
    }
    println!(
        "| lookup ({} keys, {} per round) | median ns | spread |",
        population.uids.len(),
        order.len()
    );
    println!("|---|---|---|");
    println!(
        "| `Registry::check` | {:.0} | {} |",
        median(&check_ns),
        spread(&check_ns)
    );
    println!(
        "| bare `HashMap<u128, u64>::get` | {:.0} | {} |",
        median(&get_ns),
        spread(&get_ns)
    );
    println!(
        "| of which: SHA-256 of the UID (memory is keyed by it) | {:.0} | {} |",
        median(&digest_ns),
        spread(&digest_ns)
    );
    println!(
        "| diagnostic: the bare `get` under a `std::sync::RwLock` read guard, as `check` takes | {:.0} | {} |",
        median(&locked_ns),
        spread(&locked_ns)
    );
    println!(
        "| diagnostic: the bare `get` after computing the UID's SHA-256 | {:.0} | {} |",
        median(&hashed_ns),
        spread(&hashed_ns)
    );
    println!(
        "| diagnostic: `Registry::check` in two threads at once (each its own half of the keys) | {:.0} | {} |",
        median(&check_both_ns),
        spread(&check_both_ns)
    );
    println!(
        "| diagnostic: the locked bare `get` in two threads at once | {:.0} | {} |",
        median(&locked_both_ns),
        spread(&locked_both_ns)
    );
    println!(
        "\n`check` / `get`: **{:.2}** (median of per-round ratios; {}; target <= 2)\n",
        median(&ratios),
        spread(&ratios)
    );
}

/// Opening the SQLite store and loading the registry, against `sqlite3` selecting the same
/// rows, in interleaved rounds; the database holds the first `accounts` of the population,
/// each with an active and an ended session.
async fn start_up(population: &Population, accounts: usize, rounds: usize) {
    let dir = tempfile_dir();
    let db = dir.join("solotab.db");
    write_database(&db, population, accounts).await;
    // The same two queries the store runs at start.
    let query = "SELECT id, username FROM accounts; \
                 SELECT uid, account_id, issued_at, ended_at, end_reason, last_seen \
                 FROM sessions WHERE ended_at IS NULL OR ended_at >= 0";
    let sqlite3 = std::process::Command::new("sqlite3")
        .arg("-version")
        .output();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut ratios = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let store = Arc::new(SqliteStore::open(&db).expect("the database opens"));
        let registry = Registry::load(store, Duration::from_secs(3600))
            .await
            .expect("it loads");
        let load = started.elapsed().as_secs_f64();
        assert_eq!(registry.counts(), Some((accounts, accounts)));
        drop(registry);
        ours.push(load);
        if sqlite3.is_ok() {
            let started = Instant::now();
            let status = std::process::Command::new("sqlite3")
                .arg(&db)
                .arg(query)
                .stdout(std::process::Stdio::null())
                .status()
                .expect("sqlite3 runs");
            assert!(status.success());
            let select = started.elapsed().as_secs_f64();
            theirs.push(select);
            ratios.push(load / select);
        }
    }
    println!(
        "| start-up ({accounts} active + {accounts} ended rows, {} sessions) | median s | spread |",
        2 * accounts
    );
    println!("|---|---|---|");
    println!(
        "| open + `Registry::load` | {:.2} | {} |",
        median(&ours),
        spread(&ours)
    );
    if ratios.is_empty() {
        println!("\n(`sqlite3` is not installed: no baseline)\n");
    } else {
        println!(
            "| `sqlite3` CLI, the same SELECTs to /dev/null | {:.2} | {} |",
            median(&theirs),
            spread(&theirs)
        );
        println!(
            "\nload / `sqlite3`: **{:.2}** ({}; target <= 1.5); load: **{:.2} s** (target <= 2 s)\n",
            median(&ratios),
            spread(&ratios),
            median(&ours)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Fills a fresh database (migrated by the store itself) with the first `accounts` of the
/// population, in one transaction.
async fn write_database(db: &Path, population: &Population, accounts: usize) {
    drop(SqliteStore::open(db).expect("the store creates the database"));
    let mut conn = rusqlite::Connection::open(db).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut account = tx
            .prepare("INSERT INTO accounts (id, username, username_key, password_hash, created_at) VALUES (?1, ?2, ?2, 'x', 0)")
            .unwrap();
        let mut session = tx
            .prepare(
                "INSERT INTO sessions (uid, account_id, issued_at, user_agent, ip, ended_at, end_reason, ended_by_user_agent, ended_by_ip)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .unwrap();
        let pairs = population.active.iter().zip(&population.ended);
        for ((uid, active), (ended_uid, ended)) in pairs.take(accounts) {
            account
                .execute(rusqlite::params![active.account.0, active.username])
                .unwrap();
            let ip = active.origin.ip.to_string();
            session
                .execute(rusqlite::params![
                    uid.as_bytes(),
                    active.account.0,
                    active.issued_at.as_millis(),
                    active.origin.user_agent,
                    ip,
                    None::<i64>,
                    None::<String>,
                    None::<String>,
                    None::<String>,
                ])
                .unwrap();
            session
                .execute(rusqlite::params![
                    ended_uid.as_bytes(),
                    ended.account.0,
                    ended.ended_at.as_millis() - 1,
                    active.origin.user_agent,
                    ip,
                    ended.ended_at.as_millis(),
                    "superseded",
                    active.origin.user_agent,
                    ip,
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("solotab-core-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
