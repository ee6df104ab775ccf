//! A Jepsen-style checker: given every request a load sent, with when it was sent and when
//! its answer came, find what "latest wins" forbids.
//!
//! It knows nothing of the server's internals, only the real-time order of requests: if an
//! answer arrived before another request was sent, the server handled the first before the
//! second. Every rule below follows from that and from "one active UID per account".

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// What a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Register,
    Login,
    UseHere,
    Me,
    Premium,
    Logout,
    /// `GET /api/me` for every UID issued so far, in round `n`: after each restart, before
    /// any browser reaches the new process, and once the load is over.
    Probe(usize),
}

impl Op {
    fn claims(self) -> bool {
        matches!(self, Op::Login | Op::UseHere)
    }

    pub fn is_probe(self) -> bool {
        matches!(self, Op::Probe(_))
    }
}

/// How a request ended.
#[derive(Debug, Clone)]
pub enum Answer {
    Reply {
        status: u16,
        /// The `error` field of an error body.
        code: Option<String>,
        /// The UID a successful login or "Use here" issued.
        issued: Option<Arc<str>>,
    },
    /// No answer: the connection failed or timed out.
    Nothing(String),
}

/// One request, as the client saw it.
#[derive(Debug, Clone)]
pub struct Event {
    pub account: usize,
    pub op: Op,
    /// The UID the request carried (me, premium, logout, probe).
    pub uid: Option<Arc<str>>,
    /// Which server process it went to: 0, then 1 after the first restart, and so on.
    pub incarnation: usize,
    /// Since the start of the run.
    pub sent: Duration,
    pub done: Duration,
    pub answer: Answer,
}

impl Event {
    pub fn status(&self) -> Option<u16> {
        match &self.answer {
            Answer::Reply { status, .. } => Some(*status),
            Answer::Nothing(_) => None,
        }
    }

    fn code(&self) -> Option<&str> {
        match &self.answer {
            Answer::Reply { code, .. } => code.as_deref(),
            Answer::Nothing(_) => None,
        }
    }

    /// The UID this request shows to have been active at some instant between `sent` and
    /// `done`, if it does.
    fn accepted(&self) -> Option<&Arc<str>> {
        match (self.op, &self.answer) {
            (
                op,
                Answer::Reply {
                    status: 200,
                    issued,
                    ..
                },
            ) if op.claims() => issued.as_ref(),
            (Op::Me | Op::Premium | Op::Probe(_), Answer::Reply { status: 200, .. }) => {
                self.uid.as_ref()
            }
            (Op::Logout, Answer::Reply { status: 204, .. }) => self.uid.as_ref(),
            _ => None,
        }
    }
}

/// A recorded run: the events, and when each killed server process was killed.
#[derive(Debug, Default)]
pub struct History {
    pub events: Vec<Event>,
    /// `kills[i]`: when incarnation `i` was sent SIGKILL.
    pub kills: Vec<Duration>,
}

/// Something the history shows the server did wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A request to a running server got no answer.
    Unanswered { event: usize, error: String },
    /// A 5xx.
    ServerError { event: usize, status: u16 },
    /// A UID was accepted after a newer UID of its account had been accepted, or after its
    /// own logout had been answered.
    StaleAcceptance { event: usize, account: usize },
    /// More than one UID of an account answered 200 once the load was over.
    SeveralActive {
        account: usize,
        round: usize,
        active: usize,
    },
    /// An answered login's UID was unknown afterwards, with too few newer logins to explain
    /// it (`newer` of them).
    LostLogin {
        account: usize,
        round: usize,
        uid: Arc<str>,
        newer: usize,
    },
    /// No UID of an account was active at the end, and no logout or unanswered login
    /// explains why.
    NoneActive { account: usize, round: usize },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// Checks `history`. `remembered` is how many ended UIDs the server keeps per account: an
/// older UID may answer `unknown_uid` without having been lost.
pub fn check(history: &History, remembered: usize) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (n, event) in history.events.iter().enumerate() {
        match &event.answer {
            Answer::Nothing(error) => {
                // Allowed only from a process that was killed, no earlier than the kill.
                let killed = history.kills.get(event.incarnation);
                if !killed.is_some_and(|&at| event.done >= at) {
                    violations.push(Violation::Unanswered {
                        event: n,
                        error: error.clone(),
                    });
                }
            }
            Answer::Reply { status, .. } if *status >= 500 => {
                violations.push(Violation::ServerError {
                    event: n,
                    status: *status,
                });
            }
            Answer::Reply { .. } => {}
        }
    }
    let mut by_account: HashMap<usize, Vec<usize>> = HashMap::new();
    for (n, event) in history.events.iter().enumerate() {
        by_account.entry(event.account).or_default().push(n);
    }
    for (&account, events) in &by_account {
        let events: Vec<&Event> = events.iter().map(|&n| &history.events[n]).collect();
        check_order(account, &events, &history.events, &mut violations);
        let mut rounds: Vec<usize> = events
            .iter()
            .filter_map(|e| match e.op {
                Op::Probe(round) => Some(round),
                _ => None,
            })
            .collect();
        rounds.sort_unstable();
        rounds.dedup();
        for round in rounds {
            check_round(account, round, &events, remembered, &mut violations);
        }
    }
    violations
}

/// No UID is accepted once it must have ended: after a newer UID of the account was accepted
/// by a request sent after the UID's own first acceptance was answered, or after its logout
/// was answered.
fn check_order(account: usize, events: &[&Event], all: &[Event], out: &mut Vec<Violation>) {
    let accepted: Vec<(&Arc<str>, &Event)> = events
        .iter()
        .filter_map(|e| e.accepted().map(|uid| (uid, *e)))
        .collect();
    let uids: HashSet<&Arc<str>> = accepted.iter().map(|(uid, _)| *uid).collect();
    for uid in uids {
        // Answered while `uid` was active: `uid` was active at some instant before this.
        let first_answer = accepted
            .iter()
            .filter(|(u, _)| *u == uid)
            .map(|(_, e)| e.done)
            .min()
            .expect("uid comes from this list");
        // By this instant `uid` had surely ended: another UID was active later than it was,
        // or it was logged out.
        let newer = accepted
            .iter()
            .filter(|(u, e)| *u != uid && e.sent > first_answer)
            .map(|(_, e)| e.done);
        let logged_out = events
            .iter()
            .filter(|e| {
                e.op == Op::Logout && e.status() == Some(204) && e.uid.as_ref() == Some(uid)
            })
            .map(|e| e.done);
        let Some(ended_by) = newer.chain(logged_out).min() else {
            continue;
        };
        for (u, e) in &accepted {
            if *u == uid && e.sent > ended_by {
                let event = all
                    .iter()
                    .position(|x| std::ptr::eq(x, *e))
                    .expect("events come from `all`");
                out.push(Violation::StaleAcceptance { event, account });
            }
        }
    }
}

/// When a probe round ran (after a restart, or at the end): at most one active UID per
/// account; no answered login lost; and if none is active, a logout or a login without an
/// answer explains it. Only what happened before the round began counts.
fn check_round(
    account: usize,
    round: usize,
    all: &[&Event],
    remembered: usize,
    out: &mut Vec<Violation>,
) {
    let probes: HashMap<&Arc<str>, &Event> = all
        .iter()
        .filter(|e| e.op == Op::Probe(round))
        .filter_map(|e| e.uid.as_ref().map(|uid| (uid, *e)))
        .collect();
    let began = probes.values().map(|p| p.sent).min().unwrap_or_default();
    let events: Vec<&Event> = all
        .iter()
        .filter(|e| e.sent < began && !e.op.is_probe())
        .copied()
        .collect();
    let active = probes.values().filter(|e| e.status() == Some(200)).count();
    if active > 1 {
        out.push(Violation::SeveralActive {
            account,
            round,
            active,
        });
    }
    let claims: Vec<(&Arc<str>, &Event)> = events
        .iter()
        .filter(|e| e.op.claims())
        .filter_map(|e| match &e.answer {
            Answer::Reply {
                status: 200,
                issued: Some(uid),
                ..
            } => Some((uid, *e)),
            _ => None,
        })
        .collect();
    // Logins that may have committed: answered 200, or not answered at all.
    let attempts: Vec<&Event> = events
        .iter()
        .filter(|e| e.op.claims())
        .filter(|e| matches!(e.answer, Answer::Nothing(_)) || e.status() == Some(200))
        .copied()
        .collect();
    for (uid, claim) in &claims {
        let forgotten = probes
            .get(uid)
            .is_some_and(|p| p.code() == Some("unknown_uid"));
        // The server forgets a UID only once `remembered` UIDs of its account ended after it,
        // and each of those was claimed after it: by a login not answered before it was sent.
        let newer = attempts
            .iter()
            .filter(|c| c.done > claim.sent && !std::ptr::eq(**c, *claim))
            .count();
        if forgotten && newer < remembered {
            out.push(Violation::LostLogin {
                account,
                round,
                uid: (*uid).clone(),
                newer,
            });
        }
    }
    if active == 0 && !claims.is_empty() {
        let logged_out = probes.values().any(|p| p.code() == Some("logged_out"));
        let unanswered_claim = events
            .iter()
            .any(|e| e.op.claims() && matches!(e.answer, Answer::Nothing(_)));
        if !logged_out && !unanswered_claim {
            out.push(Violation::NoneActive { account, round });
        }
    }
}
