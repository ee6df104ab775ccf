//! Where sessions and accounts live: one object-safe trait per concern, several backends.
//!
//! The [`Registry`](crate::registry::Registry) keeps every session it must answer for in
//! memory and writes through to a [`SessionStore`], which is the durable truth. Backends:
//! [`MemoryStore`] (tests, and the reference the others must agree with), [`SqliteStore`]
//! (the embedded default) and [`PostgresStore`] (one database for several instances). One conformance suite checks every backend.
//!
//! [`DeviceStore`] keeps the browsers that may "Use here" (only hashes of their tokens).

use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;

use crate::time::UnixMillis;
use crate::uid::UidDigest;

/// `SessionStore::lookup`'s query in both SQL stores, with the store's placeholder for the
/// uid. Its columns are those [`columns::SessionRow`] reads, then the username.
macro_rules! lookup_sql {
    ($uid:literal) => {
        concat!(
            "SELECT s.uid, s.account_id, s.issued_at, s.ended_at, s.end_reason, ",
            "s.ended_by_user_agent, s.ended_by_ip, s.last_seen, a.username ",
            "FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.uid = ",
            $uid
        )
    };
}

/// `SessionStore::active_of`'s query in both SQL stores (uid and issued_at of each).
macro_rules! active_of_sql {
    ($account:literal) => {
        concat!(
            "SELECT uid, issued_at FROM sessions WHERE ended_at IS NULL AND account_id = ",
            $account
        )
    };
}

/// `SessionStore::tabs_page`'s two queries in both SQL stores, given the store's spelling of
/// the search pattern parameter (NULL for no search): the count, and one page of `uid,
/// issued_at, last_seen, user_agent, ip, account id, username` (then LIMIT and OFFSET
/// placeholders follow).
macro_rules! tabs_page_sql {
    (count, $pattern:literal) => {
        concat!("SELECT count(*) ", tabs_page_sql!(from, $pattern))
    };
    (page, $pattern:literal, $limit:literal, $offset:literal) => {
        concat!(
            "SELECT s.uid, s.issued_at, s.last_seen, s.user_agent, s.ip, a.id, a.username ",
            tabs_page_sql!(from, $pattern),
            " ORDER BY a.username_key, s.issued_at, s.uid LIMIT ",
            $limit,
            " OFFSET ",
            $offset
        )
    };
    (from, $pattern:literal) => {
        concat!(
            "FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.ended_at IS NULL ",
            "AND (",
            $pattern,
            " IS NULL OR a.username_key LIKE ",
            $pattern,
            " ESCAPE '\\')"
        )
    };
}

/// The order of `DeviceStore::devices_of` in both SQL stores, and of which devices a login
/// keeps: the latest sign-in first (the memory store's `newest_first`).
macro_rules! newest_devices_first {
    () => {
        "ORDER BY COALESCE(signed_in_at, created_at) DESC, created_at DESC, token_hash DESC"
    };
}

/// `SessionStore::count_active` in both SQL stores (the partial index on active sessions
/// answers it).
const COUNT_ACTIVE: &str = "SELECT count(*) FROM sessions WHERE ended_at IS NULL";

mod memory;
mod postgres;
mod redis;
mod sqlite;

#[cfg(any(test, feature = "test-support"))]
pub use self::redis::test_redis;
#[cfg(test)]
pub(crate) use self::redis::test_store as redis_test_store;
pub use self::redis::{RedisConnectError, RedisStore};
pub use memory::MemoryStore;
#[cfg(any(test, feature = "test-support"))]
pub use postgres::test_database_url as postgres_test_database_url;
#[cfg(test)]
pub(crate) use postgres::test_store as postgres_test_store;
pub use postgres::{ConnectError, PostgresStore};
pub use sqlite::{OpenError, SqliteStore};

/// An account's stable identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub i64);

/// Where a login came from, as the server saw it. Strings are shared (`Arc`): a million
/// sessions loaded at start share a few user agents and one username per account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOrigin {
    pub user_agent: Option<Arc<str>>,
    pub ip: IpAddr,
}

/// A tab that may use its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSession {
    pub account: AccountId,
    pub username: Arc<str>,
    pub issued_at: UnixMillis,
    pub origin: LoginOrigin,
}

impl ActiveSession {
    /// What claiming `self` records of another session of the same account, which it ends.
    pub fn supersedes(&self) -> EndedSession {
        EndedSession {
            account: self.account,
            username: self.username.clone(),
            ended_at: self.issued_at,
            reason: EndReason::Superseded {
                by: self.origin.clone(),
            },
        }
    }
}

/// Why a session stopped being active. (Timeouts are not ends: a timed-out session stays
/// the store's until a login replaces it, and checks refuse it by the clock.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// A newer login of the same account took over.
    Superseded { by: LoginOrigin },
    /// The tab logged out.
    LoggedOut,
    /// Signed out from elsewhere: another tab of the account ("sign out", "everywhere"),
    /// or an administrator.
    Revoked,
    /// Its idle timeout or lifetime ran out (it is ended in the store when its account
    /// next signs in; it was refused from the moment it ran out).
    Expired,
}

/// What kind of end a session had, without who took over: what memory keeps of an ended
/// UID, and what [`SessionStore::load`] reads (a superseding login's address and browser
/// are read from the store only when a tab is told of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndKind {
    Superseded,
    LoggedOut,
    Revoked,
    Expired,
}

impl EndKind {
    /// As the stores write it in `end_reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            EndKind::Superseded => "superseded",
            EndKind::LoggedOut => "logged_out",
            EndKind::Revoked => "revoked",
            EndKind::Expired => "expired",
        }
    }

    /// Reads a stored `end_reason`.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        [
            EndKind::Superseded,
            EndKind::LoggedOut,
            EndKind::Revoked,
            EndKind::Expired,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
        .ok_or_else(|| StoreError::Backend(format!("unknown end_reason {text:?}")))
    }
}

impl EndReason {
    pub fn kind(&self) -> EndKind {
        match self {
            EndReason::Superseded { .. } => EndKind::Superseded,
            EndReason::LoggedOut => EndKind::LoggedOut,
            EndReason::Revoked => EndKind::Revoked,
            EndReason::Expired => EndKind::Expired,
        }
    }
}

/// Why [`SessionStore::end_tabs`] ends tabs: the reasons that need no newer login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TabEnd {
    Revoked,
    Expired,
}

impl TabEnd {
    /// As the stores write it in `end_reason`, and in fan-out notices.
    pub fn as_str(self) -> &'static str {
        self.reason().kind().as_str()
    }

    pub fn reason(self) -> EndReason {
        match self {
            TabEnd::Revoked => EndReason::Revoked,
            TabEnd::Expired => EndReason::Expired,
        }
    }
}

/// An active session with where its login came from, as the account's owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TabDetails {
    pub uid: UidDigest,
    pub issued_at: UnixMillis,
    pub last_seen: UnixMillis,
    pub origin: LoginOrigin,
}

/// A page of [`SessionStore::tabs_page`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TabsPage {
    /// Each tab with its account and that account's username.
    pub tabs: Vec<(AccountId, Arc<str>, TabDetails)>,
    /// How many tabs match, on every page.
    pub total: u64,
}

/// The SQL `LIKE` pattern of "contains `search`", matched against `username_key` (so in
/// any case); `%`, `_` and the escape `\` in it match themselves.
pub(crate) fn contains_pattern(search: &str) -> String {
    let key = app::rules::username_key(search);
    let mut pattern = String::from("%");
    for c in key.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Something that happened to an account, kept for its owner to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEvent {
    pub at: UnixMillis,
    pub kind: EventKind,
    /// Where the request that caused it came from, if a request did.
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// At most this many events are kept per account (the newest).
pub const MAX_EVENTS_PER_ACCOUNT: usize = 50;

/// What an [`AccountEvent`] records. Stored by [`EventKind::as_str`]: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A password login that ended no other tab.
    Login,
    /// A login (password or "Use here") that signed another tab out.
    Takeover,
    /// "Use here" that ended no other tab.
    UseHere,
    Logout,
    /// A tab was refused for its lifetime or idle timeout.
    Expired,
    /// A tab that is no longer active (superseded, logged out, revoked) made a request.
    RejectedStale,
    PasswordChanged,
    /// Tabs signed out from the account's sessions page.
    Revoked,
    /// An administrator signed every tab of the account out.
    AdminSignOut,
    /// An administrator set the account's policy.
    AdminPolicy,
    /// "That wasn't me": the owner took the account back, signing every other tab out and
    /// setting a new password.
    TakenBack,
}

impl EventKind {
    pub const ALL: [EventKind; 11] = [
        EventKind::Login,
        EventKind::Takeover,
        EventKind::UseHere,
        EventKind::Logout,
        EventKind::Expired,
        EventKind::RejectedStale,
        EventKind::PasswordChanged,
        EventKind::Revoked,
        EventKind::TakenBack,
        EventKind::AdminSignOut,
        EventKind::AdminPolicy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Login => "login",
            EventKind::Takeover => "takeover",
            EventKind::UseHere => "use_here",
            EventKind::Logout => "logout",
            EventKind::Expired => "expired",
            EventKind::RejectedStale => "rejected_stale",
            EventKind::PasswordChanged => "password_changed",
            EventKind::Revoked => "revoked",
            EventKind::TakenBack => "taken_back",
            EventKind::AdminSignOut => "admin_sign_out",
            EventKind::AdminPolicy => "admin_policy",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// A session that is no longer active, remembered so its tab can be told why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSession {
    pub account: AccountId,
    pub username: Arc<str>,
    pub ended_at: UnixMillis,
    pub reason: EndReason,
}

/// Everything a store holds that the registry must answer for, as lean as memory keeps it:
/// a username once per account rather than once per session, so that loading a million
/// sessions neither copies nor looks up a username per row.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The username of every account with a session below (and possibly of others).
    pub usernames: Vec<(AccountId, Arc<str>)>,
    pub active: Vec<(UidDigest, LoadedActive)>,
    pub ended: Vec<(UidDigest, SnapshotEnded)>,
}

/// An ended session as [`SessionStore::load`] returns it: when and why, not who took over
/// (a million of those would be read at every start for nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotEnded {
    pub account: AccountId,
    pub ended_at: UnixMillis,
    pub kind: EndKind,
}

/// One UID as [`SessionStore::lookup`] finds it, with its account's username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    Active(LoadedActive, Arc<str>),
    Ended(LoadedEnded, Arc<str>),
}

/// An active session as [`SessionStore::load`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedActive {
    pub account: AccountId,
    pub issued_at: UnixMillis,
    /// When it was last used, as far as [`SessionStore::touch`] was told (its login if never).
    pub last_seen: UnixMillis,
}

/// An ended session as [`SessionStore::lookup`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedEnded {
    pub account: AccountId,
    pub ended_at: UnixMillis,
    pub reason: EndReason,
}

/// A store failed; the request cannot be served, and nothing was changed by halves.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage backend failed: {0}")]
    Backend(String),
    #[error("storage task was cancelled or panicked")]
    Task,
}

/// The durable side of the registry.
///
/// Implementations must make each method atomic: a crash leaves either all of a call's
/// effect or none of it, and a method returns only once its effect is durable.
#[async_trait]
pub trait SessionStore: Debug + Send + Sync + 'static {
    /// Everything active, and every ended session that ended at or after `ended_since`.
    async fn load(&self, ended_since: UnixMillis) -> Result<Snapshot, StoreError>;

    /// Sessions are keyed by the [`UidDigest`] of their UID: no store ever holds a UID.
    ///
    /// Makes `uid` an active session of `session.account` and, in the same atomic step,
    /// ends every other active session of that account as superseded by `session.origin`.
    /// Returns the sessions it ended (their `ended_at` is `session.issued_at`).
    ///
    /// This is "latest wins": however many claims race, each account ends with exactly one
    /// active session, the last one committed.
    async fn claim(
        &self,
        uid: UidDigest,
        session: &ActiveSession,
    ) -> Result<Vec<(UidDigest, EndedSession)>, StoreError> {
        self.claim_replacing(uid, session, 1, &Replacing::Any)
            .await?
            .ok_or_else(|| StoreError::Backend("an unconditional claim was refused".into()))
    }

    /// [`claim`](Self::claim), keeping up to `tabs` (at least 1) active sessions of the
    /// account: the new one and the `tabs - 1` newest others (by `issued_at`, then digest);
    /// the older ones end as superseded. Only if the account's active sessions are what
    /// `replacing` requires, checked in the claim's own atomic step; `None`: they were not,
    /// and nothing changed.
    async fn claim_replacing(
        &self,
        uid: UidDigest,
        session: &ActiveSession,
        tabs: usize,
        replacing: &Replacing,
    ) -> Result<Option<Vec<(UidDigest, EndedSession)>>, StoreError>;

    /// The account's active sessions (one indexed read), in no particular order.
    async fn active_of(&self, account: AccountId) -> Result<Vec<UidDigest>, StoreError>;

    /// How many sessions are active, across every account (for metrics).
    async fn count_active(&self) -> Result<u64, StoreError>;

    /// Ends `uid` as logged out if it is active; returns whether it was.
    async fn release(&self, uid: UidDigest, at: UnixMillis) -> Result<bool, StoreError>;

    /// Ends the account's active sessions at `at`, for `why`: every one, or only those of
    /// `only` that are (the others are left alone). Returns the ones it ended.
    async fn end_tabs(
        &self,
        account: AccountId,
        only: Option<&[UidDigest]>,
        at: UnixMillis,
        why: TabEnd,
    ) -> Result<Vec<UidDigest>, StoreError>;

    /// The account's active sessions with where and when each signed in and was last used.
    async fn tabs_of(&self, account: AccountId) -> Result<Vec<TabDetails>, StoreError>;

    /// One page of every account's active tabs (for administrators), ordered by username
    /// then sign-in, with how many there are in all: those of accounts whose username
    /// contains `search` (in any case) if given.
    async fn tabs_page(
        &self,
        search: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<TabsPage, StoreError>;

    /// Records that `uid` was used at `at`, if it is active and not already seen later (for
    /// the idle timeout). Called at most every tenth of the timeout per tab, never per
    /// request.
    async fn touch(&self, uid: UidDigest, at: UnixMillis) -> Result<(), StoreError>;

    /// Forgets ended sessions that ended before `ended_before`; returns how many.
    async fn prune(&self, ended_before: UnixMillis) -> Result<u64, StoreError>;

    /// What the store holds of one UID now: one indexed read. The check of a server that
    /// shares its store with other instances reads this instead of its own memory.
    async fn lookup(&self, uid: UidDigest) -> Result<Option<Stored>, StoreError>;

    /// Forgets all but the `keep` most recently ended sessions of `account` (active ones are
    /// never touched); returns the UIDs it forgot. Bounds the history one account can grow.
    async fn forget_oldest(
        &self,
        account: AccountId,
        keep: usize,
    ) -> Result<Vec<UidDigest>, StoreError>;
}

/// What a login may do to the account's active tabs: the server's `--policy`, or an
/// account's own. Every policy is a condition of the store's atomic claim, so it holds
/// however many logins race, on however many instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Policy {
    /// A new login supersedes the active tab.
    #[default]
    LatestWins,
    /// A new login is refused while a tab is active, unless it asks to take over.
    DenyNew,
    /// Up to this many tabs are active at once (1 to [`MAX_TABS`]); a new login supersedes
    /// the oldest of them when they are all in use.
    MaxTabs(u16),
}

/// Whether what enforcement would reject is rejected (`--mode`, or an account's own): a site
/// can first watch what Solotab would do, then turn it on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Reject what the policy and timeouts say.
    #[default]
    Enforce,
    /// Reject nothing a real sign-in of the account asks for: serve it, and log and count
    /// what would have been rejected.
    Observe,
}

impl Mode {
    /// As stored and written on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Observe => "observe",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Mode::Enforce, Mode::Observe]
            .into_iter()
            .find(|mode| mode.as_str() == text)
    }
}

/// The highest `max-tabs` limit.
pub const MAX_TABS: u16 = 64;

impl Policy {
    /// As written on the command line and shown to people.
    pub fn name(self) -> &'static str {
        match self {
            Policy::LatestWins => "latest-wins",
            Policy::DenyNew => "deny-new",
            Policy::MaxTabs(_) => "max-tabs",
        }
    }

    /// `max-tabs` with `limit` tabs, if the limit is one the server accepts.
    pub fn max_tabs(limit: u16) -> Option<Self> {
        (1..=MAX_TABS)
            .contains(&limit)
            .then_some(Policy::MaxTabs(limit))
    }

    /// How many tabs of an account may be active at once.
    pub fn tabs(self) -> usize {
        match self {
            Policy::LatestWins | Policy::DenyNew => 1,
            Policy::MaxTabs(limit) => usize::from(limit.max(1)),
        }
    }

    /// As the SQL stores keep it: the `policy` column and the `max_tabs` column. Max-tabs is
    /// latest-wins over several tabs, and is stored so (the `policy` column's constraint
    /// predates it).
    pub(crate) fn to_columns(self) -> (&'static str, Option<i64>) {
        match self {
            Policy::LatestWins => ("latest-wins", None),
            Policy::DenyNew => ("deny-new", None),
            Policy::MaxTabs(limit) => ("latest-wins", Some(i64::from(limit))),
        }
    }

    /// The two columns back; `None` for anything the server did not write.
    pub(crate) fn from_columns(policy: &str, max_tabs: Option<i64>) -> Option<Self> {
        match (policy, max_tabs) {
            ("latest-wins", None) => Some(Policy::LatestWins),
            ("latest-wins", Some(limit)) => Policy::max_tabs(u16::try_from(limit).ok()?),
            ("deny-new", _) => Some(Policy::DenyNew),
            _ => None,
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Policy::MaxTabs(limit) => write!(f, "max-tabs {limit}"),
            other => f.write_str(other.name()),
        }
    }
}

/// What a claim requires of the account's active sessions when it commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replacing {
    /// Whatever they are: a password login always wins.
    Any,
    /// Exactly these (in any order; none if empty): the ones "Use here" saw before it
    /// checked the browser's device, so that a password login from another browser in
    /// between (which ends the device, then claims) is never overtaken; or, under deny-new,
    /// none but tabs past their lifetime.
    Only(Vec<UidDigest>),
}

impl Replacing {
    /// Whether a claim may go ahead while `active` are the account's active sessions.
    pub fn allows(&self, active: &[UidDigest]) -> bool {
        match self {
            Replacing::Any => true,
            Replacing::Only(expected) => {
                let (mut expected, mut active) = (expected.clone(), active.to_vec());
                expected.sort_unstable();
                active.sort_unstable();
                expected == active
            }
        }
    }
}

/// Of an account's active sessions, the ones a claim keeping `tabs` (the new one
/// included) ends: all but the `tabs - 1` newest, by `issued_at` then digest.
pub(crate) fn oldest_beyond(
    mut active: Vec<(UnixMillis, UidDigest)>,
    tabs: usize,
) -> Vec<UidDigest> {
    active.sort_unstable();
    let ending = active.len().saturating_sub(tabs.saturating_sub(1));
    active
        .into_iter()
        .take(ending)
        .map(|(_, uid)| uid)
        .collect()
}

/// What a shared store's fan-out reports to each instance, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FanOut {
    /// Listening (again): anything that ended before this may have been missed, so every
    /// open channel's UID must be read again.
    Subscribed,
    /// A UID ended (superseded or logged out) on some instance, and when and why if the
    /// notice said (then no store read is needed to tell its tab).
    Ended(UidDigest, Option<Ending>),
}

/// When and why a session ended, as a fan-out notice carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub at: UnixMillis,
    pub reason: EndReason,
}

impl FanOut {
    /// Reads a notice: `{"uid": hex, "at": "ms", "reason": ..., "ip": ..., "ua": ...}` as the
    /// claim and release of both shared stores write it, or a bare hex digest. `None` if it
    /// is neither.
    pub(crate) fn parse_notice(text: &str) -> Option<FanOut> {
        if let Some(uid) = UidDigest::from_hex(text) {
            return Some(FanOut::Ended(uid, None));
        }
        let notice: serde_json::Value = serde_json::from_str(text).ok()?;
        let uid = UidDigest::from_hex(notice["uid"].as_str()?)?;
        let ending = (|| {
            let at = UnixMillis::from_millis(notice["at"].as_str()?.parse().ok()?);
            let by_user_agent = notice["ua"]
                .as_str()
                .filter(|ua| !ua.is_empty())
                .map(Arc::from);
            let reason = columns::end_reason(
                notice["reason"].as_str()?,
                by_user_agent,
                notice["ip"].as_str(),
            )
            .ok()?;
            Some(Ending { at, reason })
        })();
        Some(FanOut::Ended(uid, ending))
    }
}

/// A stored account.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub id: AccountId,
    /// As the user typed it at registration.
    pub username: String,
    /// PHC string (argon2id).
    pub password_hash: String,
    /// The account's own policy, overriding the server's; `None`: the server's.
    pub policy: Option<Policy>,
    /// Whether the account may use the admin pages (`server admin grant NAME`).
    pub admin: bool,
    /// The account's own roll-out mode, overriding the server's; `None`: the server's.
    pub mode: Option<Mode>,
}

impl Debug for AccountRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateAccountError {
    #[error("that username is taken")]
    Taken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Accounts and their password hashes. Usernames are unique by [`app::rules::username_key`].
#[async_trait]
pub trait AccountStore: Debug + Send + Sync + 'static {
    async fn create(
        &self,
        username: &str,
        password_hash: &str,
        at: UnixMillis,
    ) -> Result<AccountId, CreateAccountError>;

    /// The account whose username has this key (see [`app::rules::username_key`]).
    async fn find(&self, username_key: &str) -> Result<Option<AccountRecord>, StoreError>;

    /// Sets the account's own policy (`None`: the server's again); false if there is no such
    /// account.
    async fn set_policy(
        &self,
        account: AccountId,
        policy: Option<Policy>,
    ) -> Result<bool, StoreError>;

    /// Replaces the account's password hash; false if there is no such account.
    async fn set_password(
        &self,
        account: AccountId,
        password_hash: &str,
    ) -> Result<bool, StoreError>;

    /// Sets the account's own roll-out mode (`None`: the server's again); false if there is
    /// no such account.
    async fn set_mode(&self, account: AccountId, mode: Option<Mode>) -> Result<bool, StoreError>;

    /// Grants (`true`) or revokes the admin role; false if there is no such account.
    async fn set_admin(&self, account: AccountId, admin: bool) -> Result<bool, StoreError>;

    /// Adds an event to the account's history, forgetting all but the newest
    /// [`MAX_EVENTS_PER_ACCOUNT`] in the same step.
    async fn record_event(
        &self,
        account: AccountId,
        event: &AccountEvent,
    ) -> Result<(), StoreError>;

    /// The account's events, newest first.
    async fn events(&self, account: AccountId) -> Result<Vec<AccountEvent>, StoreError>;
}

/// The SHA-256 of a device token: what a store keeps instead of the token itself. Its hex
/// form names a browser to its own account ("Your sessions"): a hash cannot be turned back
/// into the token, so it lets no one "Use here".
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceHash(pub [u8; 32]);

impl DeviceHash {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        UidDigest::from_bytes(self.0).to_hex()
    }

    /// [`to_hex`](Self::to_hex)'s form back; `None` if it is not that.
    pub fn from_hex(text: &str) -> Option<Self> {
        UidDigest::from_hex(text).map(|digest| Self(*digest.as_bytes()))
    }
}

impl Debug for DeviceHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceHash(..)")
    }
}

/// A browser that may "Use here" for `account` until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub account: AccountId,
    pub username: String,
    pub expires_at: UnixMillis,
}

/// A device as a password login creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDevice {
    pub hash: DeviceHash,
    pub account: AccountId,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub origin: LoginOrigin,
}

/// A device as "Your sessions" lists it. Devices from before the server kept their browser
/// and IP have neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDetails {
    pub hash: DeviceHash,
    pub created_at: UnixMillis,
    /// The latest sign-in from it: its login, or its latest "Use here".
    pub signed_in_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub user_agent: Option<String>,
    pub ip: Option<IpAddr>,
}

/// How many tabs a device remembers having started (the most any policy allows at once).
pub const MAX_TABS_PER_DEVICE: usize = MAX_TABS as usize;

/// The browsers each account may "Use here" from, and the tabs each started.
///
/// An account keeps as many devices as its policy allows tabs (one under latest-wins and
/// deny-new): the browsers of its latest sign-ins. A login from a new browser forgets the
/// one signed in longest ago.
#[async_trait]
pub trait DeviceStore: Debug + Send + Sync + 'static {
    /// Adds `device`, in one atomic step forgetting `replacing` (the same browser's previous
    /// device, whose tabs the new one takes over) and then all of the account's others but
    /// the `keep - 1` signed in most recently (so `keep` 1 ends every other browser's "Use
    /// here"). The new device is always kept, even if another was added in the same
    /// millisecond.
    async fn add_device(
        &self,
        device: &NewDevice,
        replacing: Option<DeviceHash>,
        keep: usize,
    ) -> Result<(), StoreError>;

    /// Records that `device` started `tab` at `at` (a login or "Use here" from it), which is
    /// its latest sign-in; it remembers its newest [`MAX_TABS_PER_DEVICE`] tabs. Nothing if
    /// the device is gone.
    async fn link_tab(
        &self,
        device: DeviceHash,
        tab: UidDigest,
        at: UnixMillis,
    ) -> Result<(), StoreError>;

    /// The device, if it is known and has not expired at `now`.
    async fn find_device(
        &self,
        device: DeviceHash,
        now: UnixMillis,
    ) -> Result<Option<DeviceRecord>, StoreError>;

    /// The account's devices that have not expired at `now`, the latest sign-in first.
    async fn devices_of(
        &self,
        account: AccountId,
        now: UnixMillis,
    ) -> Result<Vec<DeviceDetails>, StoreError>;

    /// Forgets one device (logout); returns whether it was known.
    async fn remove_device(&self, device: DeviceHash) -> Result<bool, StoreError>;

    /// Forgets `device` if it is one of `account`'s, returning the tabs it started (to sign
    /// them out); `None` if the account has no such device.
    async fn remove_device_of(
        &self,
        account: AccountId,
        device: DeviceHash,
    ) -> Result<Option<Vec<UidDigest>>, StoreError>;

    /// Forgets devices that expired before `now`; returns how many.
    async fn prune_devices(&self, now: UnixMillis) -> Result<u64, StoreError>;
}

/// Reading back what the SQL stores keep in their columns (the same columns in both).
mod columns {
    use std::net::IpAddr;
    use std::sync::Arc;

    use super::{
        AccountId, EndKind, EndReason, LoadedActive, LoadedEnded, LoginOrigin, Snapshot,
        SnapshotEnded, StoreError, Stored,
    };
    use crate::time::UnixMillis;
    use crate::uid::UidDigest;

    /// A `sessions` row as both SQL stores look one up, after the uid: `account_id,
    /// issued_at, ended_at, end_reason, ended_by_user_agent, ended_by_ip, last_seen`. Text
    /// is borrowed from the row.
    pub(super) struct SessionRow<'r> {
        pub account: i64,
        pub issued_at: i64,
        pub ended_at: Option<i64>,
        pub end_reason: Option<&'r str>,
        pub by_user_agent: Option<&'r str>,
        pub by_ip: Option<&'r str>,
        pub last_seen: Option<i64>,
    }

    impl SessionRow<'_> {
        /// What the row says, with its account's `username`.
        pub(super) fn with_username(self, username: &str) -> Result<Stored, StoreError> {
            let account = AccountId(self.account);
            let username = Arc::from(username);
            let Some(ended_at) = self.ended_at else {
                let active = active(account, self.issued_at, self.last_seen);
                return Ok(Stored::Active(active, username));
            };
            let reason = end_reason(
                self.end_reason.unwrap_or_default(),
                self.by_user_agent.map(Arc::from),
                self.by_ip,
            )?;
            let ended = LoadedEnded {
                account,
                ended_at: UnixMillis::from_millis(ended_at),
                reason,
            };
            Ok(Stored::Ended(ended, username))
        }
    }

    /// The columns both SQL stores load at start, `SNAPSHOT_COLUMNS`, as
    /// [`SnapshotRow::add_to`] reads them.
    pub(super) const SNAPSHOT_COLUMNS: &str =
        "uid, account_id, issued_at, ended_at, end_reason, last_seen";

    /// A `sessions` row as both SQL stores load it, after the uid: `account_id, issued_at,
    /// ended_at, end_reason, last_seen` (who took over is not read).
    pub(super) struct SnapshotRow<'r> {
        pub account: i64,
        pub issued_at: i64,
        pub ended_at: Option<i64>,
        pub end_reason: Option<&'r str>,
        pub last_seen: Option<i64>,
    }

    impl SnapshotRow<'_> {
        pub(super) fn add_to(
            self,
            uid: UidDigest,
            snapshot: &mut Snapshot,
        ) -> Result<(), StoreError> {
            let account = AccountId(self.account);
            match self.ended_at {
                None => {
                    let active = active(account, self.issued_at, self.last_seen);
                    snapshot.active.push((uid, active));
                }
                Some(ended_at) => {
                    let ended = SnapshotEnded {
                        account,
                        ended_at: UnixMillis::from_millis(ended_at),
                        kind: EndKind::parse(self.end_reason.unwrap_or_default())?,
                    };
                    snapshot.ended.push((uid, ended));
                }
            }
            Ok(())
        }
    }

    fn active(account: AccountId, issued_at: i64, last_seen: Option<i64>) -> LoadedActive {
        let issued_at = UnixMillis::from_millis(issued_at);
        LoadedActive {
            account,
            issued_at,
            last_seen: last_seen.map_or(issued_at, UnixMillis::from_millis),
        }
    }

    pub(super) fn uid(bytes: &[u8]) -> Result<UidDigest, StoreError> {
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| StoreError::Backend("a stored uid digest is not 32 bytes".into()))?;
        Ok(UidDigest::from_bytes(bytes))
    }

    /// An `account_events` row: `at, kind, ip, user_agent`. `None` for a kind this server
    /// does not know (a newer one wrote it): skipped, not an error.
    pub(super) fn event(
        at: i64,
        kind: &str,
        ip: Option<&str>,
        user_agent: Option<String>,
    ) -> Option<super::AccountEvent> {
        Some(super::AccountEvent {
            at: UnixMillis::from_millis(at),
            kind: super::EventKind::parse(kind)?,
            ip: ip.and_then(|ip| ip.parse().ok()),
            user_agent,
        })
    }

    /// A `devices` row: `token_hash, created_at, signed_in_at, expires_at, user_agent, ip`
    /// (the last two NULL for devices from before they were kept, `signed_in_at` too in
    /// SQLite).
    pub(super) fn device(
        hash: &[u8],
        created_at: i64,
        signed_in_at: Option<i64>,
        expires_at: i64,
        user_agent: Option<String>,
        ip_text: Option<&str>,
    ) -> Result<super::DeviceDetails, StoreError> {
        Ok(super::DeviceDetails {
            hash: super::DeviceHash(*uid(hash)?.as_bytes()),
            created_at: UnixMillis::from_millis(created_at),
            signed_in_at: UnixMillis::from_millis(signed_in_at.unwrap_or(created_at)),
            expires_at: UnixMillis::from_millis(expires_at),
            user_agent,
            ip: ip_text.map(ip).transpose()?,
        })
    }

    pub(super) fn ip(text: &str) -> Result<IpAddr, StoreError> {
        text.parse()
            .map_err(|_| StoreError::Backend(format!("a stored ip is not an address: {text:?}")))
    }

    /// `end_reason`, with `ended_by_user_agent` and `ended_by_ip` (read for "superseded").
    pub(super) fn end_reason(
        reason: &str,
        by_user_agent: Option<Arc<str>>,
        by_ip: Option<&str>,
    ) -> Result<EndReason, StoreError> {
        Ok(match EndKind::parse(reason)? {
            EndKind::LoggedOut => EndReason::LoggedOut,
            EndKind::Revoked => EndReason::Revoked,
            EndKind::Expired => EndReason::Expired,
            EndKind::Superseded => EndReason::Superseded {
                by: LoginOrigin {
                    user_agent: by_user_agent,
                    ip: ip(by_ip.unwrap_or_default())?,
                },
            },
        })
    }
}

#[cfg(test)]
mod conformance;
