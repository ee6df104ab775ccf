//! The load: many "browsers", each with its own address, cookie and tab, doing what users do
//! (register, log in, read, "Use here", log out) over a few accounts, so that takeovers race.
//! Every request is recorded with when it was sent and when its answer came.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::checker::{Answer, Event, Op};
use crate::common::PASSWORD;
use app::contract::DEVICE_COOKIE;

/// Where the server is now: which process (see [`Event::incarnation`]) and its base URL.
pub type Target = watch::Receiver<(usize, String)>;

pub struct Load {
    pub clients: usize,
    pub accounts: usize,
    pub duration: Duration,
}

pub fn username(account: usize) -> String {
    format!("acct{account:03}")
}

/// Every request so far, shared by the browsers and whoever probes between them.
pub type Log = Arc<Mutex<Vec<Event>>>;

/// Runs the load until `load.duration` has passed since `start`, recording into `log`.
pub async fn run(load: &Load, target: Target, start: Instant, log: Log) {
    let tasks: Vec<_> = (0..load.clients)
        .map(|n| {
            let browser = Browser::new(n, load.accounts, target.clone(), start, log.clone());
            tokio::spawn(browser.run(start + load.duration))
        })
        .collect();
    for task in tasks {
        task.await.expect("a client task panicked");
    }
}

/// Probe round `round`: asks `base` (process `incarnation`) `/api/me` once for every UID
/// any login in `log` was issued, and records the answers.
pub async fn probe(log: &Log, (incarnation, base): (usize, String), start: Instant, round: usize) {
    let issued: Vec<(usize, Arc<str>)> = log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|event| match &event.answer {
            Answer::Reply {
                issued: Some(uid), ..
            } => Some((event.account, uid.clone())),
            _ => None,
        })
        .collect();
    let client = reqwest::Client::new();
    let probes: Vec<Event> = futures_util::stream::iter(issued)
        .map(|(account, uid)| {
            let request = client
                .get(format!("{base}/api/me"))
                .header("x-tab-uid", uid.as_ref());
            async move {
                let sent = start.elapsed();
                let (answer, _) = answer_of(request.send().await).await;
                Event {
                    account,
                    op: Op::Probe(round),
                    uid: Some(uid),
                    incarnation,
                    sent,
                    answer,
                    done: start.elapsed(),
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    log.lock().unwrap().extend(probes);
}

/// One browser: its own client address (so per-client limits apply to it alone), its
/// device cookie, and the UID of its one tab.
struct Browser {
    n: usize,
    home: usize,
    accounts: usize,
    http: reqwest::Client,
    target: Target,
    start: Instant,
    rng: SplitMix,
    /// The tab's account and UID.
    tab: Option<(usize, Arc<str>)>,
    /// The account and `name=value` of this browser's device cookie.
    device: Option<(usize, String)>,
    log: Log,
}

impl Browser {
    fn new(n: usize, accounts: usize, target: Target, start: Instant, log: Log) -> Self {
        // 127.0.0.2 to 127.0.0.251: all of 127/8 is loopback on Linux.
        let ip = Ipv4Addr::new(127, 0, (n / 250) as u8, (2 + n % 250) as u8);
        let http = reqwest::Client::builder()
            .local_address(IpAddr::V4(ip))
            // Longer than the server's own request deadline (30 s, answered 408), so that
            // only a server that stopped answering leaves a request without an answer.
            .timeout(Duration::from_secs(45))
            .build()
            .expect("a client builds");
        Self {
            n,
            home: n % accounts,
            accounts,
            http,
            target,
            start,
            rng: SplitMix(0x5eed_0000 + n as u64),
            tab: None,
            device: None,
            log,
        }
    }

    async fn run(mut self, until: Instant) {
        self.send(Op::Register, self.home).await;
        while Instant::now() < until {
            let roll = self.rng.below(1000);
            let other = self.rng.below(10) == 0;
            let account = if other {
                self.rng.below(self.accounts as u64) as usize
            } else {
                self.home
            };
            let op = match (&self.tab, roll) {
                (_, 0..=4) => Op::Register,
                (None, 5..=899) | (Some(_), 5..=139) => Op::Login,
                (None, _) | (Some(_), 140..=219) => Op::UseHere,
                (Some(_), 220..=279) => Op::Logout,
                (Some(_), 280..=579) => Op::Premium,
                (Some(_), _) => Op::Me,
            };
            let answered = self.send(op, account).await;
            if !answered {
                // The server is down: wait for it as a browser's retry would.
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }

    /// Sends one request and records it; false if it got no answer.
    async fn send(&mut self, op: Op, account: usize) -> bool {
        let (incarnation, base) = self.target.borrow().clone();
        let url = |path: &str| format!("{base}{path}");
        let tab = self.tab.clone();
        let (account, uid, request) = match op {
            Op::Register => {
                // Mostly names that are taken by now; now and then a new one.
                let name = if self.rng.below(4) == 0 {
                    format!("new{}x{}", self.n, self.rng.below(1 << 30))
                } else {
                    username(account)
                };
                let body = json!({"username": name, "password": PASSWORD});
                (
                    account,
                    None,
                    self.http.post(url("/api/register")).json(&body),
                )
            }
            Op::Login => {
                // One login in fifty mistypes the password.
                let password = if self.rng.below(50) == 0 {
                    "not the password"
                } else {
                    PASSWORD
                };
                let body = json!({"username": username(account), "password": password});
                let mut request = self.http.post(url("/api/login")).json(&body);
                if let Some((_, cookie)) = &self.device {
                    request = request.header(COOKIE, cookie);
                }
                (account, None, request)
            }
            Op::UseHere => {
                let (account, cookie) = match &self.device {
                    Some((account, cookie)) => (*account, cookie.clone()),
                    None => (self.home, format!("{DEVICE_COOKIE}=none")),
                };
                let request = self
                    .http
                    .post(url("/api/use-here"))
                    .header(COOKIE, cookie)
                    .header("origin", &base)
                    .json(&json!({}));
                (account, None, request)
            }
            Op::Me | Op::Premium | Op::Logout | Op::Probe(_) => {
                let (account, uid) = tab.expect("only chosen with a tab");
                let mut request = match op {
                    Op::Me => self.http.get(url("/api/me")),
                    Op::Premium => self.http.get(url("/api/premium")),
                    _ => self.http.post(url("/api/logout")),
                };
                if let (Op::Logout, Some((_, cookie))) = (op, &self.device) {
                    request = request.header(COOKIE, cookie);
                }
                (
                    account,
                    Some(uid.clone()),
                    request.header("x-tab-uid", uid.as_ref()),
                )
            }
        };
        let sent = self.start.elapsed();
        let (answer, cookie) = answer_of(request.send().await).await;
        let done = self.start.elapsed();
        self.follow(op, account, &answer, cookie);
        let answered = matches!(answer, Answer::Reply { .. });
        self.log.lock().unwrap().push(Event {
            account,
            op,
            uid,
            incarnation,
            sent,
            done,
            answer,
        });
        answered
    }

    /// What a browser does with an answer: keep a new UID and device cookie, drop a tab the
    /// server refused.
    fn follow(&mut self, op: Op, account: usize, answer: &Answer, cookie: Option<String>) {
        let Answer::Reply { status, issued, .. } = answer else {
            return;
        };
        match (op, status) {
            (Op::Login | Op::UseHere, 200) => {
                let uid = issued.clone().expect("a 200 login has a uid");
                self.tab = Some((account, uid));
                if let Some(cookie) = cookie {
                    self.device = Some((account, cookie));
                }
            }
            (Op::UseHere, 401) => self.device = None,
            (Op::Logout, 204) => {
                // A logout ends the browser's device too.
                self.tab = None;
                self.device = None;
            }
            (Op::Me | Op::Premium | Op::Logout, 401) => self.tab = None,
            _ => {}
        }
    }
}

/// The answer, and the device cookie (`name=value`) it set, if any.
async fn answer_of(
    response: Result<reqwest::Response, reqwest::Error>,
) -> (Answer, Option<String>) {
    let response = match response {
        Ok(response) => response,
        Err(e) => return (Answer::Nothing(e.to_string()), None),
    };
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .filter(|pair| !pair.ends_with('='))
        .map(str::to_owned);
    let body: Value = match response.bytes().await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(e) => return (Answer::Nothing(e.to_string()), None),
    };
    let answer = Answer::Reply {
        status,
        code: body["error"].as_str().map(str::to_owned),
        issued: body["uid"].as_str().map(Arc::from),
    };
    (answer, cookie)
}

/// A small deterministic generator: each client's choices repeat from run to run.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}
