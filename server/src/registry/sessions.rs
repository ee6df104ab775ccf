//! The registry's memory: every active and remembered UID, in as few bytes as the check
//! allows, so that a million sessions stay cheap and a check is one index lookup.
//!
//! - **Small indexes, dense records.** Records sit packed in two vectors (active, ended),
//!   each found through an [`Index`] of their 4-byte places. A map of whole records would
//!   leave up to half of its power-of-two buckets empty, each as wide as a record; here an
//!   empty bucket costs 4 bytes. A check reads the index's bucket, then the record (see
//!   docs/BENCHMARKS.md). A record is removed by moving the last one into its place and
//!   repointing that one's entry, so the vectors never have holes.
//! - **Keys** are the first 128 bits of a UID's digest (still far beyond guessing), hashed by
//!   taking 64 of those bits as they are: they are already uniformly random, and only UIDs
//!   the server issued are ever inserted, so no client can choose keys that collide.
//! - **An active UID** keeps 32 bytes, so that two fit in a cache line and none spans two (a
//!   check then reads one line of it; at 40 bytes half of them spanned two, docs/BENCHMARKS.md):
//!   key, when it was issued, its account in 4 bytes ([`AccountRef`]) and when it was last
//!   used in 4 ([`LastUse`]: an atomic, updated under the read lock by a check at most once a
//!   second).
//! - **An ended UID** keeps 32 bytes: key, account, when and why. Not who: a superseded tab
//!   is told the newer login's address and browser from the store, which the registry reads
//!   for that refusal only (a tab asks once; only a holder of that ended UID can ask again).
//! - **Accounts** are kept once each (16 bytes, in a slab), while a UID of theirs is in
//!   memory; their usernames are packed in one arena, compacted when half of it is unused.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use hashbrown::HashTable;

use super::index::Index;
use crate::store::{AccountId, EndKind, EndedSession, Snapshot};
use crate::time::UnixMillis;
use crate::uid::UidDigest;

/// What a check tells about an active UID. Copied out of the registry: no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub account: AccountId,
    pub issued_at: UnixMillis,
}

/// Memory's key for a UID (see the module docs), as two words so that records pack with
/// 8-byte alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Key([u64; 2]);

impl Key {
    /// 64 of the key's bits, already random (see the module docs).
    fn hash(self) -> u64 {
        self.0[0]
    }
}

impl From<&UidDigest> for Key {
    fn from(digest: &UidDigest) -> Self {
        let bytes = digest.as_bytes();
        let word = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(word)
        };
        Key([word(0), word(8)])
    }
}

/// Hashes an [`AccountId`] with one multiplication (Fibonacci hashing). Account ids are
/// assigned by the store, never chosen by a client, so no one can aim for collisions.
fn account_hash(account: AccountId) -> u64 {
    (account.0 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The same, as a `Hasher`, for the map the loader builds and drops.
#[derive(Default)]
struct AccountHasher(u64);

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

/// Where a UID's record is: its place in `active`, or in `ended`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Active(u32),
    Ended(u32),
}

/// An active UID as memory keeps it.
#[derive(Debug)]
struct Active {
    key: Key,
    issued_at: UnixMillis,
    account: AccountRef,
    /// The last check that used it (its login until then).
    last_seen: LastUse,
}

/// An active record's account in 4 bytes: its id itself when that fits in 31 bits (every
/// store counts ids up from 1), else its slot in [`Accounts`] with the top bit set, which
/// costs a check one more read only past two billion accounts.
#[derive(Debug, Clone, Copy)]
struct AccountRef(u32);

impl AccountRef {
    const SLOT: u32 = 1 << 31;

    fn new(id: AccountId, slot: u32) -> Self {
        // No more accounts than records, and 2^31 records would take 64 GiB.
        debug_assert!(slot < Self::SLOT);
        match u32::try_from(id.0) {
            Ok(id) if id < Self::SLOT => Self(id),
            _ => Self(Self::SLOT | slot),
        }
    }

    fn id(self, accounts: &Accounts) -> AccountId {
        match self.slot_bits() {
            None => AccountId(i64::from(self.0)),
            Some(slot) => accounts.id(slot),
        }
    }

    /// Its slot in `accounts`.
    fn slot(self, accounts: &Accounts) -> Option<u32> {
        self.slot_bits()
            .or_else(|| accounts.slot(AccountId(i64::from(self.0))))
    }

    fn slot_bits(self) -> Option<u32> {
        (self.0 & Self::SLOT != 0).then_some(self.0 & !Self::SLOT)
    }
}

/// When an active UID was last used, in 4 bytes: tenths of a second after its login,
/// rounded up (13.6 years of them). Rounding up never makes a UID idle sooner than it is:
/// an idle timeout ends it at most 100 ms late (the production clock ticks every 100 ms
/// anyway). The store keeps the millisecond.
#[derive(Debug)]
struct LastUse(AtomicU32);

impl LastUse {
    const TENTH: u64 = 100;

    fn new(issued_at: UnixMillis, at: UnixMillis) -> Self {
        Self(AtomicU32::new(Self::tenths(issued_at, at)))
    }

    fn get(&self, issued_at: UnixMillis) -> UnixMillis {
        Self::at(issued_at, self.0.load(Ordering::Relaxed))
    }

    /// Moves it on to `now` (never back); returns what it was.
    fn record(&self, issued_at: UnixMillis, now: UnixMillis) -> UnixMillis {
        let now = Self::tenths(issued_at, now);
        Self::at(issued_at, self.0.fetch_max(now, Ordering::Relaxed))
    }

    fn tenths(issued_at: UnixMillis, at: UnixMillis) -> u32 {
        let millis = at.as_millis().saturating_sub(issued_at.as_millis());
        let tenths = u64::try_from(millis).unwrap_or(0).div_ceil(Self::TENTH);
        u32::try_from(tenths).unwrap_or(u32::MAX)
    }

    fn at(issued_at: UnixMillis, tenths: u32) -> UnixMillis {
        let millis = u64::from(tenths) * Self::TENTH;
        UnixMillis::from_millis(issued_at.as_millis().saturating_add(millis as i64))
    }
}

/// An ended UID as memory keeps it.
#[derive(Debug)]
struct Ended {
    key: Key,
    at: UnixMillis,
    /// Its account's place in [`Accounts::slots`].
    account: u32,
    why: EndKind,
}

// What the module docs promise; a field added to either record must be worth its bytes.
const _: () = assert!(std::mem::size_of::<Active>() == 32);
const _: () = assert!(std::mem::size_of::<Ended>() == 32);

/// An active UID as a check finds it: the session, and when it was last used.
pub(super) struct Found<'a> {
    pub session: Session,
    last_seen: &'a LastUse,
}

impl Found<'_> {
    pub fn last_seen(&self) -> UnixMillis {
        self.last_seen.get(self.session.issued_at)
    }

    /// Records a use at `now`; returns when it was last used before.
    pub fn used(&self, now: UnixMillis) -> UnixMillis {
        self.last_seen.record(self.session.issued_at, now)
    }
}

/// An ended UID as a check finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Gone {
    pub account: AccountId,
    pub username: Arc<str>,
    pub at: UnixMillis,
    pub why: EndKind,
}

#[derive(Debug, Default)]
pub(super) struct Sessions {
    /// Every active UID, by its place in `active`: the index a check probes.
    active_index: Index,
    active: Vec<Active>,
    /// Every ended UID, by its place in `ended`.
    ended_index: Index,
    ended: Vec<Ended>,
    accounts: Accounts,
    /// Test-only fault: claims leave the UIDs they supersede active.
    #[cfg(feature = "fault-injection")]
    pub(super) keep_superseded: bool,
}

impl Sessions {
    pub(super) fn new(snapshot: Snapshot) -> Self {
        let mut sessions = Self::default();
        let uids = snapshot.active.len() + snapshot.ended.len();
        sessions.reserve(snapshot.active.len(), snapshot.ended.len());
        // Only accounts with a UID are kept; the store names others too. Room is made for
        // as many as can be kept (growing would leave the old copies in the allocator's
        // hands), and given back below if fewer are.
        let accounts = snapshot.usernames.len().min(uids);
        let name_bytes = snapshot.usernames.iter().take(accounts);
        let name_bytes = name_bytes.map(|(_, name)| 1 + name.len()).sum();
        sessions.accounts.reserve(accounts, name_bytes);
        let usernames: HashMap<AccountId, Arc<str>, BuildHasherDefault<AccountHasher>> =
            snapshot.usernames.into_iter().collect();
        // Only a store that lost an account's row could name a session without it.
        let username = |account| usernames.get(&account).map_or("", |name| &**name);
        for (uid, loaded) in snapshot.active {
            let session = Session {
                account: loaded.account,
                issued_at: loaded.issued_at,
            };
            let name = || username(loaded.account);
            sessions.start_seen(&uid, session, loaded.last_seen, name);
        }
        for (uid, loaded) in snapshot.ended {
            let why = loaded.kind;
            let name = || username(loaded.account);
            sessions.remember(Key::from(&uid), loaded.account, loaded.ended_at, why, name);
        }
        sessions.accounts.shrink_to_fit();
        sessions
    }

    /// Room for `active` more active UIDs and `ended` more ended ones without growing.
    fn reserve(&mut self, active: usize, ended: usize) {
        self.active_index.reserve(active, hash_at(&self.active));
        self.active.reserve_exact(active);
        self.ended_index.reserve(ended, hash_at(&self.ended));
        self.ended.reserve_exact(ended);
    }

    /// Where `key` is, if memory has it.
    fn slot_of(&self, key: Key) -> Option<Slot> {
        let (active, ended) = (&self.active, &self.ended);
        let found = self
            .active_index
            .find(key.hash(), |at| active[at as usize].key == key);
        if let Some(at) = found {
            return Some(Slot::Active(at));
        }
        let found = self
            .ended_index
            .find(key.hash(), |at| ended[at as usize].key == key);
        found.map(Slot::Ended)
    }

    /// The active session of `uid`, with when it was last used; else what memory knows of
    /// its end (`None`: it never heard of it).
    pub(super) fn find(&self, uid: &UidDigest) -> Result<Found<'_>, Option<Gone>> {
        match self.slot_of(Key::from(uid)) {
            Some(Slot::Active(at)) => {
                let active = &self.active[at as usize];
                let session = Session {
                    account: active.account.id(&self.accounts),
                    issued_at: active.issued_at,
                };
                Ok(Found {
                    session,
                    last_seen: &active.last_seen,
                })
            }
            Some(Slot::Ended(at)) => {
                let ended = &self.ended[at as usize];
                Err(Some(Gone {
                    account: self.accounts.id(ended.account),
                    username: self.accounts.name(ended.account).into(),
                    at: ended.at,
                    why: ended.why,
                }))
            }
            None => Err(None),
        }
    }

    pub(super) fn username(&self, account: AccountId) -> Option<Arc<str>> {
        let slot = self.accounts.slot(account)?;
        Some(self.accounts.name(slot).into())
    }

    /// Makes `uid` active; `username` names its account if memory does not know it yet.
    pub(super) fn start(&mut self, uid: &UidDigest, session: Session, username: &str) {
        self.start_seen(uid, session, session.issued_at, || username);
    }

    /// [`start`](Self::start), last used at `last_seen`; `username` is asked for only if
    /// memory does not know the account.
    fn start_seen<'n>(
        &mut self,
        uid: &UidDigest,
        session: Session,
        last_seen: UnixMillis,
        username: impl FnOnce() -> &'n str,
    ) {
        let key = Key::from(uid);
        // Counted before a record of `key` is removed, as in `remember`.
        let account = self.accounts.slot_or_insert(session.account, username);
        let counts = &mut self.accounts.slots[account as usize];
        counts.active = counts.active.saturating_add(1);
        self.remove(key);
        let slot = Slot::Active(self.active.len() as u32);
        self.active.push(Active {
            key,
            issued_at: session.issued_at,
            account: AccountRef::new(session.account, account),
            last_seen: LastUse::new(session.issued_at, last_seen),
        });
        self.link(key, slot);
    }

    /// Ends `uid` (if active) and remembers it as `ended`.
    pub(super) fn end(&mut self, uid: &UidDigest, ended: &EndedSession) {
        let why = ended.reason.kind();
        let (account, at) = (ended.account, ended.ended_at);
        self.remember(Key::from(uid), account, at, why, || &ended.username);
    }

    /// Remembers `key` (active, ended or new) as ended `at` for `why`; `name` is asked for
    /// only if memory does not know the account.
    fn remember<'n>(
        &mut self,
        key: Key,
        account: AccountId,
        at: UnixMillis,
        why: EndKind,
        name: impl FnOnce() -> &'n str,
    ) {
        // Counted for the new account before the old one is released: the same account
        // keeps its slot.
        let account = self.accounts.slot_or_insert(account, name);
        let counts = &mut self.accounts.slots[account as usize];
        counts.ended = counts.ended.saturating_add(1);
        self.remove(key);
        let slot = Slot::Ended(self.ended.len() as u32);
        self.ended.push(Ended {
            key,
            at,
            account,
            why,
        });
        self.link(key, slot);
    }

    /// Adds `key` at `slot` to its index (its record is in place already).
    fn link(&mut self, key: Key, slot: Slot) {
        match slot {
            Slot::Active(at) => self
                .active_index
                .insert(key.hash(), at, hash_at(&self.active)),
            Slot::Ended(at) => self
                .ended_index
                .insert(key.hash(), at, hash_at(&self.ended)),
        }
    }

    pub(super) fn forget(&mut self, uid: &UidDigest) {
        self.forget_key(Key::from(uid));
    }

    fn forget_key(&mut self, key: Key) {
        if let Some(Slot::Ended(_)) = self.slot_of(key) {
            self.remove(key);
        }
    }

    /// Removes `key`'s record, active or ended, if any; the last record of its vector moves
    /// into its place.
    fn remove(&mut self, key: Key) {
        match self.slot_of(key) {
            Some(Slot::Active(at)) => {
                let removed = unlink(&mut self.active_index, &mut self.active, at);
                let account = removed.account.slot(&self.accounts);
                debug_assert!(account.is_some(), "a UID's account is in memory");
                if let Some(account) = account {
                    self.accounts
                        .release(account, |a| a.active = a.active.saturating_sub(1));
                }
            }
            Some(Slot::Ended(at)) => {
                let removed = unlink(&mut self.ended_index, &mut self.ended, at);
                self.accounts
                    .release(removed.account, |a| a.ended = a.ended.saturating_sub(1));
            }
            None => {}
        }
    }

    /// The keys of the UIDs that ended before `before`.
    pub(super) fn ended_before(&self, before: UnixMillis) -> Vec<Key> {
        self.ended
            .iter()
            .filter(|e| e.at < before)
            .map(|e| e.key)
            .collect()
    }

    pub(super) fn forget_keys(&mut self, keys: &[Key]) {
        for key in keys {
            self.forget_key(*key);
        }
    }

    pub(super) fn is_active(&self, account: AccountId) -> bool {
        self.accounts
            .slot(account)
            .is_some_and(|slot| self.accounts.slots[slot as usize].active > 0)
    }

    pub(super) fn ended_count(&self, account: AccountId) -> usize {
        self.accounts.slot(account).map_or(0, |slot| {
            usize::from(self.accounts.slots[slot as usize].ended)
        })
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

    #[cfg(test)]
    pub(super) fn accounts_in_memory(&self) -> usize {
        self.accounts.index.len()
    }
}

/// Takes the record at `at` out of `records` and `index`; the last record moves into its
/// place.
fn unlink<R: Keyed>(index: &mut Index, records: &mut Vec<R>, at: u32) -> R {
    // Out of the index first: removal rehashes the records of its run, still in place.
    index.remove(records[at as usize].key().hash(), at, hash_at(records));
    let removed = records.swap_remove(at as usize);
    if let Some(moved) = records.get(at as usize) {
        index.repoint(moved.key().hash(), records.len() as u32, at);
    }
    removed
}

/// A record of either vector, as the indexes see it.
trait Keyed {
    fn key(&self) -> Key;
}

impl Keyed for Active {
    fn key(&self) -> Key {
        self.key
    }
}

impl Keyed for Ended {
    fn key(&self) -> Key {
        self.key
    }
}

/// The hash of the record at a place of `records`, which an [`Index`] asks for when it moves
/// entries.
fn hash_at<R: Keyed>(records: &[R]) -> impl Fn(u32) -> u64 + '_ {
    |place| records[place as usize].key().hash()
}

/// An account with a UID in memory.
#[derive(Debug)]
struct Account {
    id: AccountId,
    /// Where its username starts in [`Accounts::names`].
    name: u32,
    /// Its UIDs in memory: at most [`crate::store::MAX_TABS`] active, and
    /// [`super::MAX_ENDED_PER_ACCOUNT`] ended plus one claim's worth.
    active: u16,
    ended: u16,
}

/// The accounts memory knows, each once.
#[derive(Debug, Default)]
struct Accounts {
    /// Every account in `slots`, by id.
    index: HashTable<u32>,
    slots: Vec<Account>,
    /// Places in `slots` no account holds, for the next account.
    free: Vec<u32>,
    /// Every username once, each after a byte that gives its length (usernames are 3-32
    /// ASCII characters; a longer one from an old store is cut at 255 bytes).
    names: Vec<u8>,
    /// Bytes of `names` that no account uses any more.
    unused: usize,
}

impl Accounts {
    fn slot(&self, account: AccountId) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(account_hash(account), |&slot| {
                slots[slot as usize].id == account
            })
            .copied()
    }

    fn id(&self, slot: u32) -> AccountId {
        self.slots[slot as usize].id
    }

    fn name(&self, slot: u32) -> &str {
        let at = self.slots[slot as usize].name as usize;
        let len = usize::from(self.names[at]);
        // Only whole `str`s cut at a character boundary were written.
        std::str::from_utf8(&self.names[at + 1..at + 1 + len]).unwrap_or_default()
    }

    /// `account`'s slot, added (with no UIDs) if memory did not know it.
    fn slot_or_insert<'n>(
        &mut self,
        account: AccountId,
        username: impl FnOnce() -> &'n str,
    ) -> u32 {
        if let Some(slot) = self.slot(account) {
            return slot;
        }
        let record = Account {
            id: account,
            name: self.add_name(username()),
            active: 0,
            ended: 0,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = record;
                slot
            }
            None => {
                self.slots.push(record);
                (self.slots.len() - 1) as u32
            }
        };
        let slots = &self.slots;
        self.index
            .insert_unique(account_hash(account), slot, |&slot| {
                account_hash(slots[slot as usize].id)
            });
        slot
    }

    fn add_name(&mut self, username: &str) -> u32 {
        let mut len = username.len().min(usize::from(u8::MAX));
        while !username.is_char_boundary(len) {
            len -= 1;
        }
        let at = u32::try_from(self.names.len())
            .expect("usernames of fewer than 100 million accounts fit in 4 GiB");
        self.names.push(len as u8);
        self.names.extend_from_slice(&username.as_bytes()[..len]);
        at
    }

    /// Applies `change` to the counts of the account at `slot`, and forgets the account once
    /// it has no UID in memory.
    fn release(&mut self, slot: u32, change: impl FnOnce(&mut Account)) {
        let account = &mut self.slots[slot as usize];
        change(account);
        if account.active > 0 || account.ended > 0 {
            return;
        }
        let (id, name) = (account.id, account.name as usize);
        if let Ok(entry) = self.index.find_entry(account_hash(id), |&s| s == slot) {
            entry.remove();
        }
        self.free.push(slot);
        self.unused += 1 + usize::from(self.names[name]);
        if self.unused > 4096 && self.unused * 2 > self.names.len() {
            self.compact_names();
        }
    }

    /// Rewrites `names` with only the usernames of accounts still known.
    fn compact_names(&mut self) {
        let mut names = Vec::with_capacity(self.names.len() - self.unused);
        for &slot in &self.index {
            let account = &mut self.slots[slot as usize];
            let at = account.name as usize;
            let len = usize::from(self.names[at]);
            account.name = names.len() as u32;
            names.extend_from_slice(&self.names[at..at + 1 + len]);
        }
        self.names = names;
        self.unused = 0;
    }

    /// Room for `more` accounts, and `name_bytes` of their usernames.
    fn reserve(&mut self, more: usize, name_bytes: usize) {
        let slots = &self.slots;
        self.index
            .reserve(more, |&slot| account_hash(slots[slot as usize].id));
        self.slots.reserve_exact(more);
        self.names.reserve_exact(name_bytes);
    }

    /// Gives back what the loader reserved beyond the accounts it kept.
    fn shrink_to_fit(&mut self) {
        let slots = &self.slots;
        self.index
            .shrink_to_fit(|&slot| account_hash(slots[slot as usize].id));
        self.slots.shrink_to_fit();
        self.names.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EndReason, LoginOrigin};
    use crate::uid::Uid;
    use proptest::prelude::*;

    /// The accounts of the random histories: ids as stores hand them out, and ids that do
    /// not fit an active record's 31 bits (kept there as a slot instead).
    const ACCOUNTS: [i64; 5] = [1, 2, (1 << 31) - 1, 1 << 31, -7];

    fn account() -> impl Strategy<Value = i64> {
        proptest::sample::select(&ACCOUNTS[..])
    }

    /// One step of a random history.
    #[derive(Debug, Clone)]
    enum Step {
        Start { uid: usize, account: i64 },
        End { uid: usize, account: i64, why: u8 },
        Forget { uid: usize },
        Prune { before: i64 },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..24usize, account()).prop_map(|(uid, account)| Step::Start { uid, account }),
            (0..24usize, account(), 0..4u8).prop_map(|(uid, account, why)| Step::End {
                uid,
                account,
                why
            }),
            (0..24usize).prop_map(|uid| Step::Forget { uid }),
            (0..40i64).prop_map(|before| Step::Prune { before }),
        ]
    }

    fn reason(why: u8) -> EndReason {
        match why {
            0 => EndReason::Superseded {
                by: LoginOrigin {
                    ip: [10, 0, 0, 1].into(),
                    user_agent: None,
                },
            },
            1 => EndReason::LoggedOut,
            2 => EndReason::Revoked,
            _ => EndReason::Expired,
        }
    }

    /// What memory should hold for a UID: active in an account since, or ended.
    #[derive(Debug, Clone, PartialEq)]
    enum Model {
        Active(i64, i64),
        Ended(i64, i64, EndKind),
    }

    proptest! {
        /// Whatever the order of starts, ends and forgets, every UID is found as the last
        /// step left it (records moved by removals included), and the counts agree.
        #[test]
        fn memory_answers_as_a_plain_map_would(steps in proptest::collection::vec(step(), 1..120)) {
            let uids: Vec<UidDigest> = (0..24).map(|_| Uid::generate().digest()).collect();
            let mut memory = Sessions::default();
            let mut model: HashMap<usize, Model> = HashMap::new();
            for (n, step) in steps.into_iter().enumerate() {
                let now = n as i64;
                match step {
                    Step::Start { uid, account } => {
                        let session = Session {
                            account: AccountId(account),
                            issued_at: UnixMillis::from_millis(now),
                        };
                        memory.start(&uids[uid], session, &format!("user{account}"));
                        model.insert(uid, Model::Active(account, now));
                    }
                    Step::End { uid, account, why } => {
                        let ended = EndedSession {
                            account: AccountId(account),
                            username: format!("user{account}").into(),
                            ended_at: UnixMillis::from_millis(now),
                            reason: reason(why),
                        };
                        memory.end(&uids[uid], &ended);
                        model.insert(uid, Model::Ended(account, now, reason(why).kind()));
                    }
                    Step::Forget { uid } => {
                        memory.forget(&uids[uid]);
                        if matches!(model.get(&uid), Some(Model::Ended(..))) {
                            model.remove(&uid);
                        }
                    }
                    Step::Prune { before } => {
                        let keys = memory.ended_before(UnixMillis::from_millis(before));
                        memory.forget_keys(&keys);
                        model.retain(|_, m| !matches!(m, Model::Ended(_, at, _) if *at < before));
                    }
                }
                for (i, uid) in uids.iter().enumerate() {
                    let found = match memory.find(uid) {
                        Ok(found) => Some(Model::Active(found.session.account.0, found.session.issued_at.as_millis())),
                        Err(Some(gone)) => {
                            prop_assert_eq!(&*gone.username, format!("user{}", gone.account.0));
                            Some(Model::Ended(gone.account.0, gone.at.as_millis(), gone.why))
                        }
                        Err(None) => None,
                    };
                    prop_assert_eq!(found, model.get(&i).cloned(), "uid {}", i);
                }
                let active = model.values().filter(|m| matches!(m, Model::Active(..))).count();
                prop_assert_eq!(memory.counts(), (active, model.len() - active));
                for account in ACCOUNTS {
                    let of = |m: &&Model| matches!(m, Model::Active(a, _) if *a == account);
                    let ended = |m: &&Model| matches!(m, Model::Ended(a, ..) if *a == account);
                    prop_assert_eq!(memory.is_active(AccountId(account)), model.values().any(|m| of(&m)));
                    prop_assert_eq!(memory.ended_count(AccountId(account)), model.values().filter(ended).count());
                    let known = model.values().any(|m| of(&m) || ended(&m));
                    prop_assert_eq!(memory.username(AccountId(account)).is_some(), known);
                }
            }
        }
    }

    proptest! {
        /// A last use reads back no earlier than it happened (nor than the login), and less
        /// than a tenth of a second later; a use never moves it back.
        #[test]
        fn a_last_use_is_kept_to_the_next_tenth_of_a_second(
            issued in 0..i64::from(u32::MAX),
            uses in proptest::collection::vec(-1_000..400_000_000_000i64, 1..6),
        ) {
            let issued_at = UnixMillis::from_millis(issued);
            let last_seen = LastUse::new(issued_at, issued_at);
            let mut latest = issued;
            for offset in uses {
                let at = UnixMillis::from_millis(issued + offset);
                let found = Found {
                    session: Session { account: AccountId(1), issued_at },
                    last_seen: &last_seen,
                };
                let before = found.last_seen();
                prop_assert_eq!(found.used(at), before);
                latest = latest.max(issued + offset);
                let kept = found.last_seen().as_millis();
                prop_assert!((latest..latest + 100).contains(&kept), "{} kept as {}", latest, kept);
            }
        }
    }

    #[test]
    fn usernames_are_kept_once_and_their_space_is_reused() {
        let mut memory = Sessions::default();
        let uid = Uid::generate().digest();
        // Accounts come and go: the arena is compacted, never grows without bound.
        for account in 0..10_000 {
            let session = Session {
                account: AccountId(account),
                issued_at: UnixMillis::from_millis(account),
            };
            memory.start(&uid, session, &format!("user{account:07}"));
        }
        assert_eq!(memory.accounts_in_memory(), 1);
        assert_eq!(
            memory.username(AccountId(9_999)).as_deref(),
            Some("user0009999")
        );
        assert!(
            memory.accounts.names.len() < 2 * 4096 + 64,
            "{}",
            memory.accounts.names.len()
        );
        assert!(
            memory.accounts.slots.len() <= 2,
            "freed account slots are reused"
        );
    }
}
