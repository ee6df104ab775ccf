//! Load, kill -9, and a history check: many browsers race logins, "Use here" and logouts over
//! a few accounts while the real server is killed and restarted on the same SQLite file; a
//! checker then reads every request and answer for what "latest wins" forbids.
//!
//! `SOLOTAB_HISTORY_SECS` sets how long the load runs (60 by default; `./dev.sh soak` runs
//! it longer in a release build).

#[path = "../common.rs"]
mod common;

mod checker;
mod load;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use checker::{Answer, Event, History, Op, Violation, check};
use common::ServerProcess;
use load::Load;
use solotab::registry::MAX_ENDED_PER_ACCOUNT;

fn duration() -> Duration {
    let secs = std::env::var("SOLOTAB_HISTORY_SECS")
        .ok()
        .map(|s| {
            s.parse()
                .expect("SOLOTAB_HISTORY_SECS is a number of seconds")
        })
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// 200 browsers over 50 accounts; the server is killed with SIGKILL twice and restarted on
/// the same database each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_load_and_kill_9_no_stale_uid_is_accepted_and_no_login_is_lost() {
    const KILLS: u32 = 2;
    let load = Load {
        clients: 200,
        accounts: 50,
        duration: duration(),
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("solotab.db");
    let first = ServerProcess::start(&db, "info", &[]);
    let (moved, target) = tokio::sync::watch::channel((0, first.base.clone()));
    let log = load::Log::default();
    let start = Instant::now();

    // Kills at a third and two thirds of the run. Each restart is a new incarnation, probed
    // for every UID issued so far before any browser is told where it is.
    let killer = tokio::task::spawn_blocking({
        let (db, log) = (db.clone(), log.clone());
        let runtime = tokio::runtime::Handle::current();
        let period = load.duration / (KILLS + 1);
        move || {
            let mut server = first;
            let mut kills = Vec::new();
            for n in 1..=KILLS {
                std::thread::sleep((start + period * n).saturating_duration_since(Instant::now()));
                kills.push(start.elapsed());
                server.kill_9();
                let restarted = Instant::now();
                server = ServerProcess::start(&db, "info", &[]);
                println!(
                    "restart {n}: listening again after {:?}",
                    restarted.elapsed()
                );
                let target = (n as usize, server.base.clone());
                runtime.block_on(load::probe(&log, target.clone(), start, n as usize));
                moved.send_replace(target);
            }
            (server, kills)
        }
    });
    load::run(&load, target.clone(), start, log.clone()).await;
    let (server, kills) = killer.await.unwrap();
    let last = target.borrow().clone();
    load::probe(&log, last, start, KILLS as usize + 1).await;
    server.kill_9();
    let events = std::mem::take(&mut *log.lock().unwrap());

    let history = History { events, kills };
    let violations = check(&history, MAX_ENDED_PER_ACCOUNT);
    println!("{}", summary(&history, &violations));
    assert_eq!(
        history.kills.len(),
        KILLS as usize,
        "the server was not killed as planned"
    );
    assert!(
        violations.is_empty(),
        "{} violations, the first: {:#?}",
        violations.len(),
        &violations[..violations.len().min(5)]
    );
    assert_takeovers_happened(&history);

    let db = rusqlite::Connection::open(&db).unwrap();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
}

/// The same load against a server whose registry is broken on purpose (claims leave the UIDs
/// they supersede accepted): the checker must see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_catches_a_registry_that_lets_superseded_tabs_in() {
    let app = common::spawn_app().await;
    app.state.registry.break_latest_wins();
    let load = Load {
        clients: 40,
        accounts: 8,
        duration: Duration::from_secs(5),
    };
    let (_moved, target) = tokio::sync::watch::channel((0, app.base.clone()));
    let log = load::Log::default();
    let start = Instant::now();
    load::run(&load, target, start, log.clone()).await;
    load::probe(&log, (0, app.base.clone()), start, 0).await;
    let events = std::mem::take(&mut *log.lock().unwrap());
    let history = History {
        events,
        kills: Vec::new(),
    };
    let violations = check(&history, MAX_ENDED_PER_ACCOUNT);
    println!("{}", summary(&history, &violations));
    let stale = violations
        .iter()
        .filter(|v| matches!(v, Violation::StaleAcceptance { .. }))
        .count();
    let several = violations
        .iter()
        .filter(|v| matches!(v, Violation::SeveralActive { .. }))
        .count();
    assert!(
        stale > 0 && several > 0,
        "the checker missed a broken registry: {violations:?}"
    );
}

/// Without takeovers, a clean history would prove nothing.
fn assert_takeovers_happened(history: &History) {
    let superseded = history
        .events
        .iter()
        .filter(|e| !e.op.is_probe())
        .filter(|e| matches!(&e.answer, Answer::Reply { code: Some(c), .. } if c == "superseded"))
        .count();
    assert!(
        superseded > 50,
        "only {superseded} requests met a superseded UID: the load raced too little"
    );
}

/// What happened, for the test output and docs/BENCHMARKS.md.
fn summary(history: &History, violations: &[Violation]) -> String {
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for event in history.events.iter().filter(|e| !e.op.is_probe()) {
        let outcome = match &event.answer {
            Answer::Reply { status, code, .. } => {
                format!("{status} {}", code.as_deref().unwrap_or(""))
            }
            Answer::Nothing(_) => "no answer".to_owned(),
        };
        *outcomes
            .entry(format!("{:?} {outcome}", event.op))
            .or_default() += 1;
    }
    let requests = history.events.iter().filter(|e| !e.op.is_probe()).count();
    let probes = history.events.len() - requests;
    let accounts: std::collections::HashSet<usize> = history
        .events
        .iter()
        .filter(|e| e.op == Op::Login && e.status() == Some(200))
        .map(|e| e.account)
        .collect();
    let last = history
        .events
        .iter()
        .map(|e| e.done)
        .max()
        .unwrap_or_default();
    let mut out = format!(
        "{requests} requests in {last:.1?} ({:.0}/s), {} accounts logged in, {} kills, \
         {probes} probes (after each restart and at the end), {} violations\n",
        requests as f64 / last.as_secs_f64().max(0.001),
        accounts.len(),
        history.kills.len(),
        violations.len()
    );
    for (outcome, count) in outcomes {
        out += &format!("  {outcome}: {count}\n");
    }
    out
}

#[cfg(test)]
mod checker_tests {
    //! The checker on small hand-made histories: each rule can fail.

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn reply(status: u16, code: Option<&str>, issued: Option<&str>) -> Answer {
        Answer::Reply {
            status,
            code: code.map(str::to_owned),
            issued: issued.map(Arc::from),
        }
    }

    fn event(op: Op, uid: Option<&str>, sent: u64, done: u64, answer: Answer) -> Event {
        Event {
            account: 7,
            op,
            uid: uid.map(Arc::from),
            incarnation: 0,
            sent: ms(sent),
            done: ms(done),
            answer,
        }
    }

    fn login(uid: &str, sent: u64, done: u64) -> Event {
        event(Op::Login, None, sent, done, reply(200, None, Some(uid)))
    }

    fn me(uid: &str, sent: u64, done: u64, status: u16) -> Event {
        let code = (status == 401).then_some("superseded");
        event(Op::Me, Some(uid), sent, done, reply(status, code, None))
    }

    fn probe(uid: &str, status: u16, code: Option<&str>) -> Event {
        event(
            Op::Probe(0),
            Some(uid),
            1000,
            1001,
            reply(status, code, None),
        )
    }

    fn run(events: Vec<Event>) -> Vec<Violation> {
        check(
            &History {
                events,
                kills: vec![],
            },
            32,
        )
    }

    #[test]
    fn a_clean_takeover_passes() {
        let violations = run(vec![
            login("a", 0, 10),
            me("a", 11, 12, 200),
            login("b", 20, 30),
            me("a", 31, 32, 401),
            me("b", 31, 32, 200),
            probe("a", 401, Some("superseded")),
            probe("b", 200, None),
        ]);
        assert_eq!(violations, vec![]);
    }

    #[test]
    fn concurrent_logins_may_end_in_either_order() {
        // b's login overlaps a's: the server may order them either way.
        let violations = run(vec![
            login("a", 0, 10),
            login("b", 5, 15),
            me("a", 20, 21, 200),
            me("b", 20, 21, 401),
            probe("a", 200, None),
            probe("b", 401, Some("superseded")),
        ]);
        assert_eq!(violations, vec![]);
    }

    #[test]
    fn a_superseded_uid_accepted_after_the_newer_login_answered_is_stale() {
        let violations = run(vec![
            login("a", 0, 10),
            login("b", 20, 30),
            me("a", 31, 32, 200),
            probe("b", 200, None),
            probe("a", 401, Some("superseded")),
        ]);
        // Accepting `a` again also makes the later probe of `b` suspect: either could be the
        // bug, and the checker names what it saw.
        assert!(violations.contains(&Violation::StaleAcceptance {
            event: 2,
            account: 7
        }));
    }

    #[test]
    fn a_uid_accepted_after_its_logout_is_stale() {
        let violations = run(vec![
            login("a", 0, 10),
            event(Op::Logout, Some("a"), 11, 12, reply(204, None, None)),
            me("a", 13, 14, 200),
            probe("a", 401, Some("logged_out")),
        ]);
        assert!(matches!(
            violations[..],
            [Violation::StaleAcceptance { event: 2, .. }]
        ));
    }

    #[test]
    fn two_active_uids_at_the_end_are_caught() {
        let violations = run(vec![
            login("a", 0, 10),
            login("b", 20, 30),
            probe("a", 200, None),
            probe("b", 200, None),
        ]);
        assert!(violations.contains(&Violation::SeveralActive {
            account: 7,
            round: 0,
            active: 2
        }));
    }

    #[test]
    fn an_answered_login_forgotten_after_a_restart_is_lost() {
        let violations = run(vec![
            login("a", 0, 10),
            probe("a", 401, Some("unknown_uid")),
        ]);
        assert!(violations.iter().any(|v| matches!(
            v,
            Violation::LostLogin {
                account: 7,
                newer: 0,
                ..
            }
        )));
        assert!(violations.contains(&Violation::NoneActive {
            account: 7,
            round: 0
        }));
    }

    #[test]
    fn no_answer_is_allowed_only_from_a_killed_server_after_the_kill() {
        let lost = |sent, done| {
            event(
                Op::Me,
                Some("a"),
                sent,
                done,
                Answer::Nothing("connection refused".into()),
            )
        };
        let history = History {
            events: vec![lost(0, 5), lost(15, 16)],
            kills: vec![ms(10)],
        };
        assert!(matches!(
            check(&history, 32)[..],
            [Violation::Unanswered { event: 0, .. }]
        ));
    }

    #[test]
    fn a_5xx_is_caught() {
        let violations = run(vec![event(
            Op::Me,
            Some("a"),
            0,
            1,
            reply(500, Some("internal"), None),
        )]);
        assert!(matches!(
            violations[..],
            [Violation::ServerError { status: 500, .. }]
        ));
    }
}
