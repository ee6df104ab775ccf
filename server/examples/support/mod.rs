//! Shared by the benchmarks: a population of sessions, a registry holding exactly them, and
//! the statistics the reports use.

#![allow(dead_code)] // each benchmark uses a different part

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::{Value, json};
use solotab::registry::Registry;
use solotab::store::{
    AccountId, ActiveSession, EndReason, EndedSession, LoadedActive, LoginOrigin, Replacing,
    SessionStore, Snapshot, SnapshotEnded, StoreError, Stored, TabEnd,
};
use solotab::time::UnixMillis;
use solotab::uid::{Uid, UidDigest};
use tokio_tungstenite::tungstenite::Message;

/// The server binary's allocator (`src/main.rs`), so that the benchmarks measure memory laid
/// out as the server's is: jemalloc with transparent huge pages, unless the `jemalloc`
/// feature is off.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
pub type ServerAllocator = tikv_jemallocator::Jemalloc;
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
pub const SERVER_ALLOCATOR: ServerAllocator = tikv_jemallocator::Jemalloc;
#[cfg(not(all(feature = "jemalloc", not(target_env = "msvc"))))]
pub type ServerAllocator = std::alloc::System;
#[cfg(not(all(feature = "jemalloc", not(target_env = "msvc"))))]
pub const SERVER_ALLOCATOR: ServerAllocator = std::alloc::System;

/// User agents are few in real traffic; sessions draw from these.
const USER_AGENTS: [&str; 3] = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
    "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36",
];

/// The sessions every measurement uses: `n` accounts, each with one active and one ended UID.
pub struct Population {
    pub uids: Vec<Uid>,
    /// The same UIDs as plain numbers, for the baseline map.
    pub numbers: Vec<u128>,
    pub active: Vec<(UidDigest, ActiveSession)>,
    pub ended: Vec<(UidDigest, EndedSession)>,
}

impl Population {
    pub fn new(n: usize) -> Self {
        let now = UnixMillis::now();
        let mut population = Population {
            uids: Vec::with_capacity(n),
            numbers: Vec::with_capacity(n),
            active: Vec::with_capacity(n),
            ended: Vec::with_capacity(n),
        };
        for i in 0..n {
            let account = AccountId(i as i64 + 1);
            let username: Arc<str> = format!("user{i:07}").into();
            let origin = LoginOrigin {
                user_agent: Some(USER_AGENTS[i % USER_AGENTS.len()].into()),
                ip: std::net::IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]),
            };
            let uid = Uid::generate();
            population.numbers.push(
                uuid::Uuid::parse_str(&uid.expose())
                    .expect("a uid is a uuid")
                    .as_u128(),
            );
            population.active.push((
                uid.digest(),
                ActiveSession {
                    account,
                    username: username.clone(),
                    issued_at: now,
                    origin: origin.clone(),
                },
            ));
            population.uids.push(uid);
            population.ended.push((
                Uid::generate().digest(),
                EndedSession {
                    account,
                    username,
                    ended_at: now,
                    reason: EndReason::Superseded { by: origin },
                },
            ));
        }
        population
    }

    pub fn snapshot(&self) -> Snapshot {
        let loaded_active = |(uid, s): &(UidDigest, ActiveSession)| {
            let loaded = LoadedActive {
                account: s.account,
                issued_at: s.issued_at,
                last_seen: s.issued_at,
            };
            (*uid, loaded)
        };
        let loaded_ended = |(uid, e): &(UidDigest, EndedSession)| {
            let loaded = SnapshotEnded {
                account: e.account,
                ended_at: e.ended_at,
                kind: e.reason.kind(),
            };
            (*uid, loaded)
        };
        Snapshot {
            usernames: self
                .active
                .iter()
                .map(|(_, s)| (s.account, s.username.clone()))
                .collect(),
            active: self.active.iter().map(loaded_active).collect(),
            ended: self.ended.iter().map(loaded_ended).collect(),
        }
    }
}

/// A store that hands the registry a snapshot and nothing else: what the registry holds is
/// then all that is measured.
#[derive(Debug)]
struct SnapshotStore(Mutex<Snapshot>);

#[async_trait]
impl SessionStore for SnapshotStore {
    async fn load(&self, _: UnixMillis) -> Result<Snapshot, StoreError> {
        Ok(std::mem::take(&mut *self.0.lock().unwrap()))
    }
    async fn claim_replacing(
        &self,
        _: UidDigest,
        _: &ActiveSession,
        _: usize,
        _: &Replacing,
    ) -> Result<Option<Vec<(UidDigest, EndedSession)>>, StoreError> {
        Err(StoreError::Backend("read-only benchmark store".into()))
    }
    async fn release(&self, _: UidDigest, _: UnixMillis) -> Result<bool, StoreError> {
        Err(StoreError::Backend("read-only benchmark store".into()))
    }
    async fn touch(&self, _: UidDigest, _: UnixMillis) -> Result<(), StoreError> {
        Err(StoreError::Backend("read-only benchmark store".into()))
    }
    async fn end_tabs(
        &self,
        _: AccountId,
        _: Option<&[UidDigest]>,
        _: UnixMillis,
        _: TabEnd,
    ) -> Result<Vec<UidDigest>, StoreError> {
        Err(StoreError::Backend("read-only benchmark store".into()))
    }
    async fn tabs_page(
        &self,
        _: Option<&str>,
        _: usize,
        _: usize,
    ) -> Result<solotab::store::TabsPage, StoreError> {
        Err(StoreError::Backend(
            "the benchmark store is only loaded from".into(),
        ))
    }
    async fn tabs_of(&self, _: AccountId) -> Result<Vec<solotab::store::TabDetails>, StoreError> {
        Err(StoreError::Backend(
            "the benchmark store is only loaded from".into(),
        ))
    }
    async fn prune(&self, _: UnixMillis) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn lookup(&self, _: UidDigest) -> Result<Option<Stored>, StoreError> {
        Err(StoreError::Backend(
            "the benchmark store is only loaded from".into(),
        ))
    }
    async fn count_active(&self) -> Result<u64, StoreError> {
        Err(StoreError::Backend(
            "the benchmark store is only loaded from".into(),
        ))
    }
    async fn active_of(&self, _: AccountId) -> Result<Vec<UidDigest>, StoreError> {
        Err(StoreError::Backend(
            "the benchmark store is only loaded from".into(),
        ))
    }
    async fn forget_oldest(&self, _: AccountId, _: usize) -> Result<Vec<UidDigest>, StoreError> {
        Ok(Vec::new())
    }
}

pub async fn registry_of(population: &Population) -> Registry {
    let store = Arc::new(SnapshotStore(Mutex::new(population.snapshot())));
    Registry::load(store, Duration::from_secs(3600))
        .await
        .expect("the snapshot loads")
}

/// Resident memory of this process, in bytes (Linux).
pub fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Resident memory of this process in transparent huge pages, in bytes (Linux; 0 if unknown).
pub fn huge_pages() -> u64 {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let kib: Option<u64> = rollup
        .lines()
        .find_map(|line| line.strip_prefix("AnonHugePages:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok());
    kib.unwrap_or(0) * 1024
}

/// CPU time used so far, in seconds: by this process (all its threads), and by its children
/// that have been waited for (Linux, `/proc/self/stat`).
pub fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux /proc");
    // The fields after the command's name, which is in parentheses and may hold spaces.
    let fields: Vec<u64> = stat[stat.rfind(')').expect("a stat line") + 2..]
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // utime, stime, cutime, cstime are fields 14-17 of the line, 12-15 after the name.
    let ticks = clock_ticks_per_second();
    (
        (fields[11] + fields[12]) as f64 / ticks,
        (fields[13] + fields[14]) as f64 / ticks,
    )
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`; 100 on Linux if it cannot say).
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The UIDs as plain numbers in a std `HashMap`: the baseline a lookup is compared with.
pub fn raw_map(population: &Population) -> HashMap<u128, u64> {
    population
        .numbers
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, i as u64))
        .collect()
}

/// The `p` quantile of `samples` (0.5: the median, 0.99: p99), nearest rank.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// "min-max" of the values.
pub fn spread(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{min:.2}-{max:.2}")
}

/// The password every benchmark account has.
pub const PASSWORD: &str = "correct horse battery";

/// A push channel, as a tab holds it.
pub type Channel =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn register(client: &reqwest::Client, base: &str, name: &str) {
    let creds = json!({"username": name, "password": PASSWORD});
    let reply = client
        .post(format!("{base}/api/register"))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert!(reply.status().is_success(), "registering {name}");
}

pub async fn login(client: &reqwest::Client, base: &str, name: &str) -> String {
    let reply: Value = client
        .post(format!("{base}/api/login"))
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply["uid"].as_str().expect("login succeeded").to_owned()
}

/// Opens `/api/channel` on `addr` with this `Origin` and says hello with `uid`.
pub async fn open_channel(addr: impl std::fmt::Display, origin: &str, uid: &str) -> Channel {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/api/channel")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let hello = serde_json::json!({"type": "hello", "uid": uid}).to_string();
    ws.send(tokio_tungstenite::tungstenite::Message::text(hello))
        .await
        .unwrap();
    ws
}

/// Reads until a message of `kind` arrives; false if the channel closed first.
pub async fn expect(ws: &mut Channel, kind: &str) -> bool {
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(text) = message {
            let event: Value = serde_json::from_str(&text).unwrap();
            if event["type"] == kind {
                return true;
            }
        }
    }
    false
}
