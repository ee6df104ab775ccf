//! The registry's memory: every active and remembered UID, in as few bytes as the check
//! allows, so that a million sessions stay cheap and a check is one map lookup.
//!
//! - Keys are the first 128 bits of a UID's digest (still far beyond guessing, and half the
//!   bytes), hashed by taking 64 of those bits as they are: they are already uniformly
//!   random, and only UIDs the server issued are ever inserted, so no client can choose keys
//!   that collide.
//! - An active UID keeps 24 bytes: its account, when it was issued and when it was last
//!   used (an atomic, updated under the read lock by a check at most once a second). The
//!   username lives
//!   once per account; the user agent of a newer login is shared by every UID it ended, and
//!   each distinct user agent is kept once however many logins sent it.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::{Refused, Rejection};
use crate::store::{AccountId, EndReason, EndedSession, LoginOrigin, Snapshot};
use crate::time::UnixMillis;
use crate::uid::UidDigest;

/// What a check tells about an active UID. Copied out of the registry: no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub account: AccountId,
    pub issued_at: UnixMillis,
}

/// Memory's key for a UID (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Key(u128);

impl From<&UidDigest> for Key {
    fn from(digest: &UidDigest) -> Self {
        let mut half = [0u8; 16];
        half.copy_from_slice(&digest.as_bytes()[..16]);
        Key(u128::from_le_bytes(half))
    }
}

/// Hashes a [`Key`] by keeping 64 of its (already random) bits.
#[derive(Default)]
pub(super) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `Key`'s u128 is ever hashed here, which arrives through `write_u128`.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }

    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

type KeyMap<V> = HashMap<Key, V, BuildHasherDefault<KeyHasher>>;

/// Hashes an [`AccountId`] with one multiplication (Fibonacci hashing). Account ids are
/// assigned by the store, never chosen by a client, so no one can aim for collisions, and
/// the loader touches this map once per session.
#[derive(Default)]
pub(super) struct AccountHasher(u64);

impl Hasher for AccountHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// An active UID as memory keeps it.
#[derive(Debug)]
struct Active {
    session: Session,
    /// Unix milliseconds of the last check that used it (its login until then).
    last_seen: AtomicI64,
}

/// An active UID as a check finds it: the session, and when it was last used.
pub(super) struct Found<'a> {
    pub session: Session,
    last_seen: &'a AtomicI64,
}

impl Found<'_> {
    pub fn last_seen(&self) -> UnixMillis {
        UnixMillis::from_millis(self.last_seen.load(Ordering::Relaxed))
    }

    /// Records a use at `now`; returns when it was last used before.
    pub fn used(&self, now: UnixMillis) -> UnixMillis {
        UnixMillis::from_millis(self.last_seen.fetch_max(now.as_millis(), Ordering::Relaxed))
    }
}

#[derive(Debug)]
struct Ended {
    account: AccountId,
    at: UnixMillis,
    why: Why,
}

/// [`EndReason`] as memory keeps it: the newer login's user agent interned.
#[derive(Debug)]
enum Why {
    Superseded(Origin),
    LoggedOut,
    Revoked,
    Expired,
}

impl Why {
    fn origin(self) -> Option<Origin> {
        match self {
            Why::Superseded(origin) => Some(origin),
            Why::LoggedOut | Why::Revoked | Why::Expired => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Origin {
    ip: IpAddr,
    user_agent: Option<Arc<str>>,
}

#[derive(Debug)]
struct Account {
    username: Arc<str>,
    active: u32,
    ended: u32,
}

#[derive(Debug, Default)]
pub(super) struct Sessions {
    active: KeyMap<Active>,
    ended: KeyMap<Ended>,
    /// Accounts with at least one UID in memory.
    accounts: HashMap<AccountId, Account, BuildHasherDefault<AccountHasher>>,
    /// Each distinct user agent once (see [`Sessions::intern`]).
    user_agents: HashSet<Arc<str>>,
    /// Test-only fault: claims leave the UIDs they supersede active.
    #[cfg(feature = "fault-injection")]
    pub(super) keep_superseded: bool,
}

impl Sessions {
    pub(super) fn new(snapshot: Snapshot) -> Self {
        let mut sessions = Self::default();
        sessions.active.reserve(snapshot.active.len());
        sessions.ended.reserve(snapshot.ended.len());
        // Every account the store named first, with no UID; accounts still without one
        // after the sessions are counted are dropped again.
        sessions.accounts.reserve(snapshot.usernames.len());
        for (account, username) in snapshot.usernames {
            let entry = Account {
                username,
                active: 0,
                ended: 0,
            };
            sessions.accounts.insert(account, entry);
        }
        // Only a store that lost an account's row could name a session without it.
        let unnamed: Arc<str> = Arc::from("");
        for (uid, loaded) in snapshot.active {
            let session = Session {
                account: loaded.account,
                issued_at: loaded.issued_at,
            };
            sessions.start_seen(&uid, session, loaded.last_seen, &unnamed);
        }
        for (uid, loaded) in snapshot.ended {
            let account = loaded.account;
            sessions.remember(&uid, account, loaded.ended_at, &loaded.reason, &unnamed);
        }
        sessions.accounts.retain(|_, a| a.active > 0 || a.ended > 0);
        sessions
    }

    /// The active session of `uid`, with when it was last used; else why it is refused.
    pub(super) fn find(&self, uid: &UidDigest) -> Result<Found<'_>, Refused> {
        let key = Key::from(uid);
        if let Some(active) = self.active.get(&key) {
            return Ok(Found {
                session: active.session,
                last_seen: &active.last_seen,
            });
        }
        match self.ended.get(&key) {
            None => Err(Refused {
                rejection: Rejection::Unknown,
                account: None,
                username: None,
            }),
            Some(ended) => Err(Refused {
                rejection: match &ended.why {
                    Why::Superseded(by) => Rejection::Superseded {
                        at: ended.at,
                        by: LoginOrigin {
                            ip: by.ip,
                            // A copy: the interned one must stay memory's alone (see
                            // `release_user_agent`), and refusals are the rare path.
                            user_agent: by.user_agent.as_deref().map(Arc::from),
                        },
                    },
                    Why::LoggedOut => Rejection::LoggedOut { at: ended.at },
                    Why::Revoked => Rejection::Revoked { at: ended.at },
                    Why::Expired => Rejection::Expired { at: ended.at },
                },
                account: Some(ended.account),
                username: self.username(ended.account),
            }),
        }
    }

    pub(super) fn username(&self, account: AccountId) -> Option<Arc<str>> {
        self.accounts.get(&account).map(|a| a.username.clone())
    }

    /// Makes `uid` active; `username` names its account if memory does not know it yet.
    pub(super) fn start(&mut self, uid: &UidDigest, session: Session, username: &Arc<str>) {
        self.start_seen(uid, session, session.issued_at, username);
    }

    /// [`start`](Self::start), last used at `last_seen`.
    fn start_seen(
        &mut self,
        uid: &UidDigest,
        session: Session,
        last_seen: UnixMillis,
        username: &Arc<str>,
    ) {
        let active = Active {
            session,
            last_seen: AtomicI64::new(last_seen.as_millis()),
        };
        if self.active.insert(Key::from(uid), active).is_none() {
            self.account(session.account, username).active += 1;
        }
    }

    /// Ends `uid` (if active) and remembers it as `ended`.
    pub(super) fn end(&mut self, uid: &UidDigest, ended: &EndedSession) {
        if let Some(active) = self.active.remove(&Key::from(uid)) {
            self.release_account(active.session.account, |a| a.active -= 1);
        }
        self.remember(
            uid,
            ended.account,
            ended.ended_at,
            &ended.reason,
            &ended.username,
        );
    }

    /// Remembers `uid` as ended `at` for `reason`.
    fn remember(
        &mut self,
        uid: &UidDigest,
        account: AccountId,
        at: UnixMillis,
        reason: &EndReason,
        username: &Arc<str>,
    ) {
        let why = match reason {
            EndReason::Superseded { by } => Why::Superseded(Origin {
                ip: by.ip,
                user_agent: by.user_agent.as_deref().map(|ua| self.intern(ua)),
            }),
            EndReason::LoggedOut => Why::LoggedOut,
            EndReason::Revoked => Why::Revoked,
            EndReason::Expired => Why::Expired,
        };
        let entry = Ended { account, at, why };
        match self.ended.insert(Key::from(uid), entry) {
            None => self.account(account, username).ended += 1,
            Some(replaced) => self.release_user_agent(replaced.why.origin()),
        }
    }

    pub(super) fn forget(&mut self, uid: &UidDigest) {
        self.forget_key(Key::from(uid));
    }

    fn forget_key(&mut self, key: Key) {
        if let Some(ended) = self.ended.remove(&key) {
            self.release_account(ended.account, |a| a.ended -= 1);
            self.release_user_agent(ended.why.origin());
        }
    }

    /// The keys of the UIDs that ended before `before`.
    pub(super) fn ended_before(&self, before: UnixMillis) -> Vec<Key> {
        self.ended
            .iter()
            .filter(|(_, e)| e.at < before)
            .map(|(key, _)| *key)
            .collect()
    }

    pub(super) fn forget_keys(&mut self, keys: &[Key]) {
        for key in keys {
            self.forget_key(*key);
        }
    }

    pub(super) fn is_active(&self, account: AccountId) -> bool {
        self.accounts.get(&account).is_some_and(|a| a.active > 0)
    }

    pub(super) fn ended_count(&self, account: AccountId) -> usize {
        self.accounts.get(&account).map_or(0, |a| a.ended as usize)
    }

    pub(super) fn counts(&self) -> (usize, usize) {
        (self.active.len(), self.ended.len())
    }

    /// Whether a claim should end what it superseded: always, unless a test broke it.
    pub(super) fn ends_superseded(&self) -> bool {
        #[cfg(feature = "fault-injection")]
        return !self.keep_superseded;
        #[cfg(not(feature = "fault-injection"))]
        true
    }

    fn account(&mut self, account: AccountId, username: &Arc<str>) -> &mut Account {
        self.accounts.entry(account).or_insert_with(|| Account {
            username: username.clone(),
            active: 0,
            ended: 0,
        })
    }

    /// Applies `change` to `account`'s counts, and forgets the account once it has no UID
    /// in memory.
    fn release_account(&mut self, account: AccountId, change: impl FnOnce(&mut Account)) {
        if let Some(entry) = self.accounts.get_mut(&account) {
            change(entry);
            if entry.active == 0 && entry.ended == 0 {
                self.accounts.remove(&account);
            }
        }
    }

    /// The one shared copy of `user_agent`.
    fn intern(&mut self, user_agent: &str) -> Arc<str> {
        if let Some(known) = self.user_agents.get(user_agent) {
            return known.clone();
        }
        let shared: Arc<str> = user_agent.into();
        self.user_agents.insert(shared.clone());
        shared
    }

    /// Drops a reference to an interned user agent, and the user agent itself once nothing
    /// else refers to it.
    fn release_user_agent(&mut self, origin: Option<Origin>) {
        if let Some(user_agent) = origin.and_then(|o| o.user_agent) {
            // This reference and the set's: no other UID uses it.
            if Arc::strong_count(&user_agent) == 2 {
                self.user_agents.remove(&user_agent);
            }
        }
    }

    #[cfg(test)]
    pub(super) fn interned_user_agents(&self) -> usize {
        self.user_agents.len()
    }

    #[cfg(test)]
    pub(super) fn accounts_in_memory(&self) -> usize {
        self.accounts.len()
    }
}
