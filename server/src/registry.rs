//! The enforcement core: which tab UID each account accepts.
//!
//! "Latest wins": [`Registry::claim`] makes a fresh UID the account's only active one and
//! reports what it superseded ([`Registry::login`] applies the account's policy, which may
//! keep up to N active). [`Registry::check`] answers every protected request.
//! [`Registry::release`] ends a UID on logout. [`Registry::watch`] lets a push channel wait
//! for its UID to end.
//!
//! The [`SessionStore`] is the durable truth. Where the registry reads it depends on who
//! else writes to it:
//!
//! - **One server** ([`Registry::load`], the SQLite default): memory is the store's
//!   write-through cache, and a check is one memory lookup with no I/O. Writes go through
//!   one async mutex so that memory applies store results in the order the store committed
//!   them (otherwise two racing claims could leave both UIDs active in memory).
//! - **Several instances** ([`Registry::shared`], PostgreSQL): any instance may claim, so
//!   no instance's memory can know that a UID is still active. Every check reads the store
//!   (one indexed lookup), so once any instance has answered a login, no instance accepts
//!   the UID it superseded. Memory keeps only usernames, which never change.
//!
//! Policies ([`Policy`]: latest-wins, deny-new, max-tabs; the server's or an account's own) and a
//! UID's lifetime (`with_lifetime`) are applied here, as conditions of the store's atomic
//! claim ([`Replacing`]) and of every check, so they hold on every backend.
//!
//! Every end (takeover, logout) is announced to the watches of the UIDs it ended, and to
//! no one else (see [`watch`]). With one server, a watch is taken under the same read lock
//! as a check, so an end cannot slip between "it is active" and "tell me when it ends".
//! With several, ends made elsewhere arrive through the store's fan-out
//! ([`Registry::follow`]), and a watch subscribes before it reads the store.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio::sync::mpsc;

pub use crate::store::Policy;
use crate::store::{
    AccountId, ActiveSession, EndKind, EndReason, EndedSession, FanOut, LoginOrigin, Replacing,
    SessionStore, StoreError, Stored, TabDetails, TabEnd, TabsPage,
};
use crate::time::UnixMillis;
use crate::uid::{Uid, UidDigest};

mod index;
mod sessions;
mod watch;

pub use sessions::Session;
use sessions::{Gone, Sessions};
use watch::Watchers;
pub use watch::{MAX_WATCHES_PER_UID, Watch};

/// How long superseded and logged-out UIDs are remembered by default.
pub const DEFAULT_HISTORY: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// At most this many ended UIDs are remembered per account; older ones answer `unknown_uid`.
/// Without a bound, one account looping logins would grow memory and disk without limit.
pub const MAX_ENDED_PER_ACCOUNT: usize = 32;

/// Pruning removes expired UIDs from memory this many at a time, so that checks, which need
/// the read lock, never wait for a whole sweep.
const PRUNE_BATCH: usize = 1024;

/// How many times a conditional claim looks again when other claims keep coming in between.
const MAX_CLAIM_ATTEMPTS: usize = 8;

/// How long the fan-out waits before re-reading UIDs it could not read (store down).
const RECHECK_AFTER: Duration = Duration::from_secs(1);

/// Why a UID is not accepted. Policies to come (idle timeout, forced sign-out) add
/// variants here, and every layer above maps them to the wire by matching on this type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Never issued here, or forgotten after the history period.
    Unknown,
    /// A newer login of the same account took over at `at`, from `by`.
    Superseded { at: UnixMillis, by: LoginOrigin },
    /// The tab logged out at `at`.
    LoggedOut { at: UnixMillis },
    /// The tab was signed out from elsewhere at `at` (another tab of the account, or an
    /// administrator).
    Revoked { at: UnixMillis },
    /// The UID reached the end of its lifetime (`--absolute-timeout`) at `at`.
    Expired { at: UnixMillis },
    /// The UID was not used for `after` (`--idle-timeout`), which ran out at `at`.
    Idle { at: UnixMillis, after: Duration },
}

/// A UID that was refused, with the account it belonged to if known (for logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub rejection: Rejection,
    /// The account the UID belonged to, if known (for logs and the account's history).
    pub account: Option<AccountId>,
    pub username: Option<Arc<str>>,
}

impl Refused {
    /// A UID the registry never issued, or has forgotten.
    fn unknown() -> Self {
        Refused {
            rejection: Rejection::Unknown,
            account: None,
            username: None,
        }
    }
}

/// The outcome of a successful [`Registry::claim`].
#[derive(Debug, Clone)]
pub struct Claimed {
    pub uid: Uid,
    pub session: ActiveSession,
    /// Every session this login ended. Under latest-wins at most one; the type allows several.
    pub superseded: Vec<(UidDigest, EndedSession)>,
    /// The account's tabs that had timed out, ended before the claim (each with when it
    /// timed out): for the account's history, which may not have heard of them.
    pub expired: Vec<(UidDigest, UnixMillis)>,
}

/// Why a UID was not served: it is refused (the tab is told why), or the store could not
/// be read (fail closed: the request fails, and the tab is not told it was refused).
#[derive(Debug, thiserror::Error)]
pub enum NotAccepted {
    #[error("the uid is not active")]
    Refused(Refused),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether reading a UID counts as a use of it (for the idle timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    /// A request the tab made: it counts.
    Request,
    /// The server looking (push channels, logout, the fan-out): it does not.
    Peek,
}

/// What a claim may end of the account's active tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ends {
    /// Whatever is active: a password login under latest-wins, or an explicit takeover.
    Any,
    /// What was active before the claim's condition was checked, and nothing that came
    /// after: "Use here" (see [`Registry::claim_if`]).
    Seen,
    /// Nothing live (deny-new): a tab past its lifetime is replaced, an active one refuses.
    NothingLive,
}

impl Ends {
    /// What a login under `policy` may end; `unconditional` is what it may end when the
    /// policy lets it end anything (a password login: [`Ends::Any`]; "Use here":
    /// [`Ends::Seen`]).
    fn under(policy: Policy, takeover: bool, unconditional: Ends) -> Ends {
        match policy {
            Policy::DenyNew if !takeover => Ends::NothingLive,
            _ => unconditional,
        }
    }
}

/// The account's active tabs as a deny-new claim sees them.
struct LiveTabs {
    /// Every session the store holds active for the account, past its lifetime or not.
    active: Vec<UidDigest>,
    /// When the oldest of them still within its lifetime was issued; `None`: none is.
    live_since: Option<UnixMillis>,
}

/// What a conditional claim ([`Registry::claim_if`]) came to.
#[derive(Debug, Clone)]
pub enum Claim {
    Claimed(Claimed),
    /// The policy refused it: the account has had an active tab since `since`.
    InUse {
        since: UnixMillis,
    },
    /// Its own condition answered false; nothing changed.
    NotAllowed,
}

/// Why [`Registry::watch`] gave no watch.
#[derive(Debug, thiserror::Error)]
pub enum WatchRefused {
    /// The UID is not active.
    #[error("the uid is not active")]
    Refused(Refused),
    /// The UID already has [`MAX_WATCHES_PER_UID`] watches.
    #[error("too many watches of one uid")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<NotAccepted> for WatchRefused {
    fn from(not_accepted: NotAccepted) -> Self {
        match not_accepted {
            NotAccepted::Refused(refused) => WatchRefused::Refused(refused),
            NotAccepted::Store(e) => WatchRefused::Store(e),
        }
    }
}

impl Rejection {
    /// When the UID stopped being accepted, if it ever was.
    pub fn at(&self) -> Option<UnixMillis> {
        match self {
            Rejection::Unknown => None,
            Rejection::Superseded { at, .. }
            | Rejection::LoggedOut { at }
            | Rejection::Revoked { at }
            | Rejection::Expired { at }
            | Rejection::Idle { at, .. } => Some(*at),
        }
    }

    fn ended(at: UnixMillis, reason: &EndReason) -> Self {
        match reason {
            EndReason::Superseded { by } => Rejection::Superseded { at, by: by.clone() },
            EndReason::LoggedOut => Rejection::LoggedOut { at },
            EndReason::Revoked => Rejection::Revoked { at },
            EndReason::Expired => Rejection::Expired { at },
        }
    }

    fn of(ended: &EndedSession) -> Self {
        Self::ended(ended.ended_at, &ended.reason)
    }
}

/// Where checks are answered from (see the module docs).
#[derive(Debug, Clone)]
enum Truth {
    /// This server is the store's only writer: memory mirrors the store.
    // std RwLock, not tokio's: it is held only for a map operation and never across an
    // await, so readers on the hot path never yield.
    Memory(Arc<RwLock<Sessions>>),
    /// Instances share the store: checks read it. Memory keeps usernames only.
    Shared(Arc<RwLock<HashMap<AccountId, Arc<str>>>>),
}

/// Cheap to clone: clones share one registry.
#[derive(Debug, Clone)]
pub struct Registry {
    store: Arc<dyn SessionStore>,
    truth: Truth,
    policy: Policy,
    /// How long a UID is accepted after its login, at most (`None`: for as long as it is
    /// the account's latest).
    lifetime: Option<Duration>,
    /// How long a UID is accepted after its last use (`None`: however long ago that was).
    idle: Option<Duration>,
    // Serialises this server's store writes (and, with one server, memory's updates; see
    // the module docs). Held across the store's await, which is why it is tokio's. It
    // guards the time of this server's latest login: each login is issued strictly after
    // the one before, so "the oldest tab" (max-tabs) is never a tie.
    writes: Arc<tokio::sync::Mutex<UnixMillis>>,
    watchers: Arc<Watchers>,
}

impl Registry {
    /// A registry that is its store's only writer: loads what the store holds (active
    /// sessions, and ended ones within `history`) and answers checks from memory.
    pub async fn load(store: Arc<dyn SessionStore>, history: Duration) -> Result<Self, StoreError> {
        let snapshot = store.load(UnixMillis::now().minus(history)).await?;
        let sessions = Sessions::new(snapshot);
        Ok(Self::with(
            store,
            Truth::Memory(Arc::new(RwLock::new(sessions))),
        ))
    }

    /// A registry that shares its store with other instances: every check reads the store.
    /// Pass the store's fan-out to [`follow`](Self::follow) so that push channels hear of
    /// ends made by the other instances.
    pub fn shared(store: Arc<dyn SessionStore>) -> Self {
        Self::with(store, Truth::Shared(Arc::default()))
    }

    fn with(store: Arc<dyn SessionStore>, truth: Truth) -> Self {
        Self {
            store,
            truth,
            policy: Policy::default(),
            lifetime: None,
            idle: None,
            writes: Arc::new(tokio::sync::Mutex::new(UnixMillis::from_millis(0))),
            watchers: Arc::default(),
        }
    }

    /// This registry, applying `policy` to every login.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// This registry, accepting each UID for at most `lifetime` after its login.
    pub fn with_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// This registry, refusing a UID that no request used for `idle`.
    pub fn with_idle_timeout(mut self, idle: Option<Duration>) -> Self {
        self.idle = idle;
        self
    }

    /// When a UID issued at `issued_at` stops being accepted, if ever.
    pub fn expiry(&self, issued_at: UnixMillis) -> Option<UnixMillis> {
        let lifetime = i64::try_from(self.lifetime?.as_millis()).unwrap_or(i64::MAX);
        Some(UnixMillis::from_millis(
            issued_at.as_millis().saturating_add(lifetime),
        ))
    }

    /// `session`, unless its lifetime is over.
    fn unexpired(&self, session: Session) -> Result<Session, Refused> {
        match self.expiry(session.issued_at) {
            Some(at) if at <= UnixMillis::coarse_now() => Err(Refused {
                rejection: Rejection::Expired { at },
                account: Some(session.account),
                username: self.username(session.account),
            }),
            _ => Ok(session),
        }
    }

    /// Whether checks read the store (several instances) rather than memory.
    pub fn is_shared(&self) -> bool {
        matches!(self.truth, Truth::Shared(_))
    }

    /// Is `uid` the active UID of its account? With one server: one memory lookup, no I/O,
    /// no allocation. With several: one store lookup. Counts as a use of the UID (for the
    /// idle timeout).
    pub async fn check(&self, uid: &Uid) -> Result<Session, NotAccepted> {
        self.check_digest(&uid.digest(), Use::Request).await
    }

    async fn check_digest(&self, digest: &UidDigest, use_: Use) -> Result<Session, NotAccepted> {
        let (session, _) = self.find(digest, use_).await?;
        self.unexpired(session).map_err(NotAccepted::Refused)
    }

    /// The active session of `digest` (expired or not) and when it was last used before now;
    /// refused if it was idle too long. A [`Use::Request`] records this use: in memory at
    /// once, in the store at most every tenth of the idle timeout (in the background).
    async fn find(
        &self,
        digest: &UidDigest,
        use_: Use,
    ) -> Result<(Session, UnixMillis), NotAccepted> {
        // The coarse clock, for every look: requests (the hot path) read no clock, and a push
        // channel told of an end is never ahead of the requests that follow it.
        let now = UnixMillis::coarse_now();
        // `recorded`: this use moved the last use on, and may be due in the store.
        let (session, last_seen, recorded) = match &self.truth {
            Truth::Memory(sessions) => {
                let looked = {
                    let sessions = read(sessions);
                    match sessions.find(digest) {
                        Ok(found) => {
                            let last_seen = found.last_seen();
                            self.not_idle(found.session, last_seen, now)?;
                            // A write only once per period: most checks just read (no
                            // cache line made dirty on the hot path).
                            let every = self.seen_every_ms();
                            let stale = now.as_millis() - last_seen.as_millis() >= every;
                            // Of concurrent uses, only the one that moved it records it.
                            let recorded =
                                use_ == Use::Request && stale && found.used(now) == last_seen;
                            Ok((found.session, last_seen, recorded))
                        }
                        Err(gone) => Err(gone),
                    }
                };
                match looked {
                    Ok(found) => found,
                    Err(gone) => return Err(self.refusal(digest, gone).await),
                }
            }
            Truth::Shared(usernames) => match self.store.lookup(*digest).await? {
                Some(Stored::Active(active, username)) => {
                    remember_username(usernames, active.account, username);
                    let session = Session {
                        account: active.account,
                        issued_at: active.issued_at,
                    };
                    self.not_idle(session, active.last_seen, now)?;
                    (session, active.last_seen, use_ == Use::Request)
                }
                Some(Stored::Ended(ended, username)) => {
                    return Err(NotAccepted::Refused(Refused {
                        rejection: Rejection::ended(ended.ended_at, &ended.reason),
                        account: Some(ended.account),
                        username: Some(username),
                    }));
                }
                None => return Err(NotAccepted::Refused(Refused::unknown())),
            },
        };
        if recorded {
            self.record_use(*digest, last_seen, now);
        }
        Ok((session, last_seen))
    }

    /// The refusal of a UID that memory has not got active: unknown, or ended as `gone`
    /// says. Memory keeps when and why; a superseded tab's newer login (address, browser)
    /// is read from the store, which committed it before memory heard of it.
    async fn refusal(&self, digest: &UidDigest, gone: Option<Gone>) -> NotAccepted {
        let Some(gone) = gone else {
            return NotAccepted::Refused(Refused::unknown());
        };
        let rejection = match gone.why {
            EndKind::LoggedOut => Rejection::LoggedOut { at: gone.at },
            EndKind::Revoked => Rejection::Revoked { at: gone.at },
            EndKind::Expired => Rejection::Expired { at: gone.at },
            EndKind::Superseded => match self.store.lookup(*digest).await {
                Ok(Some(Stored::Ended(ended, _))) => {
                    Rejection::ended(ended.ended_at, &ended.reason)
                }
                // Pruned from the store a moment before from memory: what memory is about
                // to say too.
                Ok(None) => return NotAccepted::Refused(Refused::unknown()),
                Ok(Some(Stored::Active(..))) => {
                    return StoreError::Backend("store and memory disagree on a uid".into()).into();
                }
                Err(e) => return e.into(),
            },
        };
        NotAccepted::Refused(Refused {
            rejection,
            account: Some(gone.account),
            username: Some(gone.username),
        })
    }

    /// Refuses `session` if it was last used `idle` or longer before `now`.
    fn not_idle(
        &self,
        session: Session,
        last_seen: UnixMillis,
        now: UnixMillis,
    ) -> Result<(), NotAccepted> {
        match self.idle_until(last_seen) {
            Some(at) if at <= now => Err(NotAccepted::Refused(Refused {
                rejection: Rejection::Idle {
                    at,
                    after: self.idle.unwrap_or_default(),
                },
                account: Some(session.account),
                username: self.username(session.account),
            })),
            _ => Ok(()),
        }
    }

    /// How precisely memory keeps a UID's last use: a tenth of the idle timeout, at most a
    /// second (so "Your sessions" is right to the second without one).
    fn seen_every_ms(&self) -> i64 {
        let tenth = self.idle.map_or(1000, |idle| idle.as_millis() / 10);
        i64::try_from(tenth.clamp(1, 1000)).unwrap_or(1000)
    }

    /// When a UID last used at `last_seen` stops being accepted for want of use, if ever.
    fn idle_until(&self, last_seen: UnixMillis) -> Option<UnixMillis> {
        let idle = i64::try_from(self.idle?.as_millis()).unwrap_or(i64::MAX);
        Some(UnixMillis::from_millis(
            last_seen.as_millis().saturating_add(idle),
        ))
    }

    /// Writes a use at `now` to the store when the idle timeout needs it: with several
    /// instances, once the stored last use is a tenth of the timeout old; with one, when
    /// memory's last use (moved at most once a second) enters a new tenth of the timeout.
    /// Never awaited by the request; a failed write only makes the tab look idle a little
    /// sooner.
    fn record_use(&self, digest: UidDigest, last_seen: UnixMillis, now: UnixMillis) {
        let Some(idle) = self.idle else { return };
        let every = i64::try_from(idle.as_millis() / 10)
            .unwrap_or(i64::MAX)
            .max(1);
        let due = match self.truth {
            // Memory holds every use; the store needs one per period, at the first use of it.
            Truth::Memory(_) => now.as_millis() / every > last_seen.as_millis() / every,
            Truth::Shared(_) => now.as_millis() - last_seen.as_millis() >= every,
        };
        if !due {
            return;
        }
        let store = Arc::clone(&self.store);
        tokio::spawn(async move {
            if let Err(e) = store.touch(digest, now).await {
                // At most once a second: with the store down, every tab's request would say so.
                static WARNED_AT: AtomicI64 = AtomicI64::new(0);
                let second = now.as_millis() / 1000;
                if WARNED_AT.swap(second, Ordering::Relaxed) != second {
                    tracing::warn!(error = %e, "cannot record a tab's last use; it may time out early");
                }
            }
        });
    }

    /// When `uid` stops being accepted if nothing else happens (its lifetime, or its idle
    /// timeout counted from its last use), without counting as a use; refused if it already
    /// has. For push channels, which tell the tab at that moment.
    pub async fn deadline(&self, uid: &Uid) -> Result<Option<UnixMillis>, NotAccepted> {
        let (session, last_seen) = self.find(&uid.digest(), Use::Peek).await?;
        let session = self.unexpired(session).map_err(NotAccepted::Refused)?;
        let expiry = self.expiry(session.issued_at);
        let idle = self.idle_until(last_seen);
        Ok(expiry.into_iter().chain(idle).min())
    }

    /// The username of `account`, if a check or claim here has seen it.
    pub fn username(&self, account: AccountId) -> Option<Arc<str>> {
        match &self.truth {
            Truth::Memory(sessions) => read(sessions).username(account),
            Truth::Shared(usernames) => read(usernames).get(&account).cloned(),
        }
    }

    /// Like [`check`](Self::check), and if `uid` is active, a [`Watch`] that resolves when
    /// it stops being so. At most [`MAX_WATCHES_PER_UID`] watches per UID.
    pub async fn watch(&self, uid: &Uid) -> Result<(Session, Watch), WatchRefused> {
        let digest = uid.digest();
        match &self.truth {
            Truth::Memory(sessions) => {
                // Subscribing under the read lock: an end needs the write lock first, and
                // announces itself after, so this watch either sees the end here or is told.
                let looked = {
                    let sessions = read(sessions);
                    match sessions.find(&digest) {
                        Ok(found) => {
                            self.not_idle(found.session, found.last_seen(), UnixMillis::now())?;
                            let session = found.session;
                            let watch = self
                                .watchers
                                .subscribe(digest)
                                .ok_or(WatchRefused::TooMany)?;
                            Ok((session, watch))
                        }
                        Err(gone) => Err(gone),
                    }
                };
                let (session, watch) = match looked {
                    Ok(watched) => watched,
                    Err(gone) => return Err(self.refusal(&digest, gone).await.into()),
                };
                // Expiry is a matter of the clock, not of the store: checked after the lock.
                let session = self.unexpired(session).map_err(WatchRefused::Refused)?;
                Ok((session, watch))
            }
            Truth::Shared(_) => {
                // Subscribed before the store is read: an end committed after the read is
                // announced by the fan-out, which finds this watch.
                let watch = self
                    .watchers
                    .subscribe(digest)
                    .ok_or(WatchRefused::TooMany)?;
                let session = self.check_digest(&digest, Use::Peek).await?;
                Ok((session, watch))
            }
        }
    }

    /// Whether `account` has an active tab now.
    pub async fn is_active(&self, account: AccountId) -> Result<bool, StoreError> {
        match &self.truth {
            Truth::Memory(sessions) => Ok(read(sessions).is_active(account)),
            Truth::Shared(_) => Ok(!self.store.active_of(account).await?.is_empty()),
        }
    }

    /// Issues a fresh UID for `account` and makes it the only one accepted, superseding any
    /// other; returns once the store has committed it.
    ///
    /// The work runs in its own task, so a client that hangs up mid-login cannot leave the
    /// store committed but memory not updated.
    pub async fn claim(
        &self,
        account: AccountId,
        username: Arc<str>,
        origin: LoginOrigin,
    ) -> Result<Claimed, StoreError> {
        let claim = self
            .claim_as(account, username, origin, Ends::Any, 1, || async {
                Ok(true)
            })
            .await?;
        match claim {
            Claim::Claimed(claimed) => Ok(claimed),
            _ => Err(StoreError::Backend(
                "an unconditional claim was refused".into(),
            )),
        }
    }

    /// When a login would be refused by the policy now: `Some(since)` if the account has an
    /// active tab that it may not end (deny-new, no `takeover`). A cheap check before a
    /// login does anything else; the claim checks again in its own atomic step.
    pub async fn in_use(
        &self,
        account: AccountId,
        own_policy: Option<Policy>,
        takeover: bool,
    ) -> Result<Option<UnixMillis>, StoreError> {
        if self.policy_for(own_policy) != Policy::DenyNew || takeover {
            return Ok(None);
        }
        Ok(self.live_tabs(account).await?.live_since)
    }

    /// The account's active tabs in the store, and which of them are live: not past their
    /// lifetime nor idle too long (one read, and one per tab).
    async fn live_tabs(&self, account: AccountId) -> Result<LiveTabs, StoreError> {
        let active = self.store.active_of(account).await?;
        let mut live_since: Option<UnixMillis> = None;
        for uid in &active {
            match self.find(uid, Use::Peek).await {
                Ok((session, _)) if self.unexpired(session).is_ok() => {
                    let since = session.issued_at;
                    live_since = Some(live_since.map_or(since, |s| s.min(since)));
                }
                // Timed out, or ended in between (the claim's condition sees that it changed).
                Ok(_) | Err(NotAccepted::Refused(_)) => {}
                Err(NotAccepted::Store(e)) => return Err(e),
            }
        }
        Ok(LiveTabs { active, live_since })
    }

    /// The policy a login of an account with `own_policy` is under: its own, else the
    /// server's.
    pub fn policy_for(&self, own_policy: Option<Policy>) -> Policy {
        own_policy.unwrap_or(self.policy)
    }

    /// A login under its policy ([`policy_for`](Self::policy_for)): [`claim`](Self::claim)
    /// under latest-wins, or when `takeover` asks to end the active tab; under max-tabs N,
    /// ending the oldest tab if N are active; under deny-new, only if the account has no
    /// active tab.
    pub async fn login(
        &self,
        account: AccountId,
        username: Arc<str>,
        origin: LoginOrigin,
        own_policy: Option<Policy>,
        takeover: bool,
    ) -> Result<Claim, StoreError> {
        let policy = self.policy_for(own_policy);
        let ends = Ends::under(policy, takeover, Ends::Any);
        self.claim_as(account, username, origin, ends, policy.tabs(), || async {
            Ok(true)
        })
        .await
    }

    /// [`login`](Self::login), but only if `still_allowed` answers true, and nothing can
    /// have changed the account's active tab between its answer and the claim.
    ///
    /// This is what makes "Use here" exact: the device is checked in effect in the claim's
    /// own step, so a password login from another browser (which ends the device, then
    /// claims) either comes first and is seen, or comes after and wins. With one server,
    /// `still_allowed` runs after every earlier claim and release of this server and before
    /// any later one. With several, the claim requires the active tab to be the one read
    /// before `still_allowed` ran; if another claim came in between, all is done again.
    pub async fn claim_if<F>(
        &self,
        account: AccountId,
        username: Arc<str>,
        origin: LoginOrigin,
        own_policy: Option<Policy>,
        takeover: bool,
        still_allowed: impl Fn() -> F + Send + 'static,
    ) -> Result<Claim, StoreError>
    where
        F: Future<Output = Result<bool, StoreError>> + Send,
    {
        let policy = self.policy_for(own_policy);
        let ends = Ends::under(policy, takeover, Ends::Seen);
        self.claim_as(
            account,
            username,
            origin,
            ends,
            policy.tabs(),
            still_allowed,
        )
        .await
    }

    /// A claim that may end what `ends` says, keeping at most `tabs` active, if
    /// `still_allowed` answers true.
    async fn claim_as<F>(
        &self,
        account: AccountId,
        username: Arc<str>,
        origin: LoginOrigin,
        ends: Ends,
        tabs: usize,
        still_allowed: impl Fn() -> F + Send + 'static,
    ) -> Result<Claim, StoreError>
    where
        F: Future<Output = Result<bool, StoreError>> + Send,
    {
        let this = self.clone();
        tokio::spawn(async move {
            let mut last_issued = this.writes.lock().await;
            let expired = this.end_timed_out(account).await?;
            for _ in 0..MAX_CLAIM_ATTEMPTS {
                let (replacing, tabs) = match (ends, &this.truth) {
                    // Deny-new: only where no tab is live (those past their lifetime do not
                    // count: they are replaced), whoever wrote last.
                    (Ends::NothingLive, _) => {
                        let tabs = this.live_tabs(account).await?;
                        if let Some(since) = tabs.live_since {
                            return Ok(Claim::InUse { since });
                        }
                        (Replacing::Only(tabs.active), 1)
                    }
                    // One server's write order already keeps the condition's step.
                    (Ends::Any, _) | (Ends::Seen, Truth::Memory(_)) => (Replacing::Any, tabs),
                    (Ends::Seen, Truth::Shared(_)) => {
                        (Replacing::Only(this.store.active_of(account).await?), tabs)
                    }
                };
                if !still_allowed().await? {
                    return Ok(Claim::NotAllowed);
                }
                let uid = Uid::generate();
                let next = UnixMillis::from_millis(last_issued.as_millis().saturating_add(1));
                let issued_at = UnixMillis::now().max(next);
                let session = ActiveSession {
                    account,
                    username: username.clone(),
                    issued_at,
                    origin: origin.clone(),
                };
                let digest = uid.digest();
                let Some(superseded) = this
                    .store
                    .claim_replacing(digest, &session, tabs, &replacing)
                    .await?
                else {
                    continue; // another claim came in between (or just ended): look again
                };
                *last_issued = issued_at;
                this.started(&digest, &session, &superseded);
                this.bound_history(account, !superseded.is_empty()).await;
                return Ok(Claim::Claimed(Claimed {
                    uid,
                    session,
                    superseded,
                    expired,
                }));
            }
            Err(StoreError::Backend(
                "the account's tab kept changing; the claim gave up".into(),
            ))
        })
        .await
        .map_err(|_| StoreError::Task)?
    }

    /// Applies a committed claim of `digest` to memory and tells the watches of what it ended.
    fn started(
        &self,
        digest: &UidDigest,
        session: &ActiveSession,
        superseded: &[(UidDigest, EndedSession)],
    ) {
        match &self.truth {
            Truth::Memory(sessions) => {
                let mut sessions = write(sessions);
                let ends_superseded = sessions.ends_superseded();
                for (old, ended) in superseded.iter().filter(|_| ends_superseded) {
                    sessions.end(old, ended);
                }
                let started = Session {
                    account: session.account,
                    issued_at: session.issued_at,
                };
                sessions.start(digest, started, &session.username);
            }
            Truth::Shared(usernames) => {
                remember_username(usernames, session.account, session.username.clone());
            }
        }
        // This server's channels hear at once; the others' through the fan-out.
        for (old, ended) in superseded {
            self.watchers.ended(old, Rejection::of(ended));
        }
    }

    /// Ends `uid` (logout). A UID that is not active is refused with its rejection, and
    /// nothing changes.
    pub async fn release(&self, uid: Uid) -> Result<EndedSession, NotAccepted> {
        let this = self.clone();
        tokio::spawn(async move {
            let _write = this.writes.lock().await;
            let digest = uid.digest();
            let session = this.check_digest(&digest, Use::Peek).await?;
            let at = UnixMillis::now();
            if !this.store.release(digest, at).await? {
                return Err(match &this.truth {
                    // Memory said active but the store disagrees: only possible if the store
                    // was changed behind our back. Fail closed rather than guess.
                    Truth::Memory(_) => {
                        StoreError::Backend("store and memory disagree on a uid".into()).into()
                    }
                    // Another instance ended it since the check: answer with why.
                    Truth::Shared(_) => match this.check_digest(&digest, Use::Peek).await {
                        Ok(_) => StoreError::Backend("a release did not take".into()).into(),
                        Err(not_accepted) => not_accepted,
                    },
                });
            }
            let username = this.username(session.account).unwrap_or_default();
            let ended = EndedSession {
                account: session.account,
                username,
                ended_at: at,
                reason: EndReason::LoggedOut,
            };
            if let Truth::Memory(sessions) = &this.truth {
                write(sessions).end(&digest, &ended);
            }
            this.watchers.ended(&digest, Rejection::of(&ended));
            this.bound_history(ended.account, true).await;
            Ok(ended)
        })
        .await
        .map_err(|_| NotAccepted::Store(StoreError::Task))?
    }

    /// Signs the account's tabs out from elsewhere (its sessions page, an administrator):
    /// every one, or only those of `only`. Each is told `revoked` at once, on every instance.
    /// Returns the UIDs it ended.
    pub async fn revoke(
        &self,
        account: AccountId,
        only: Option<Vec<UidDigest>>,
    ) -> Result<Vec<UidDigest>, StoreError> {
        let this = self.clone();
        tokio::spawn(async move {
            let _write = this.writes.lock().await;
            let at = UnixMillis::now();
            this.end_tabs(account, only.as_deref(), at, TabEnd::Revoked)
                .await
        })
        .await
        .map_err(|_| StoreError::Task)?
    }

    /// Ends tabs of the account at `at` for `why`, in the store then in memory, and tells
    /// their watches. The caller holds the write lock.
    async fn end_tabs(
        &self,
        account: AccountId,
        only: Option<&[UidDigest]>,
        at: UnixMillis,
        why: TabEnd,
    ) -> Result<Vec<UidDigest>, StoreError> {
        let ended = self.store.end_tabs(account, only, at, why).await?;
        let session = EndedSession {
            account,
            username: self.username(account).unwrap_or_default(),
            ended_at: at,
            reason: why.reason(),
        };
        if let Truth::Memory(sessions) = &self.truth {
            let mut sessions = write(sessions);
            for uid in &ended {
                sessions.end(uid, &session);
            }
        }
        for uid in &ended {
            self.watchers.ended(uid, Rejection::of(&session));
        }
        self.bound_history(account, !ended.is_empty()).await;
        Ok(ended)
    }

    /// Ends, as expired, the account's tabs that have timed out (each at the moment it did):
    /// they are refused already, and from now on hold no place under max-tabs and make no
    /// sign-in a takeover. The caller holds the write lock.
    async fn end_timed_out(
        &self,
        account: AccountId,
    ) -> Result<Vec<(UidDigest, UnixMillis)>, StoreError> {
        let mut expired = Vec::new();
        if self.idle.is_none() && self.lifetime.is_none() {
            return Ok(expired);
        }
        for tab in self.tabs(account).await? {
            if let Some(at) = self.timed_out_at(&tab) {
                let ended = self
                    .end_tabs(account, Some(&[tab.uid]), at, TabEnd::Expired)
                    .await?;
                expired.extend(ended.into_iter().map(|uid| (uid, at)));
            }
        }
        Ok(expired)
    }

    /// [`revoke`](Self::revoke) every tab of the account but `keep` (a password change,
    /// "sign out everywhere else").
    pub async fn revoke_all_but(
        &self,
        account: AccountId,
        keep: &Uid,
    ) -> Result<Vec<UidDigest>, StoreError> {
        let keep = keep.digest();
        let others: Vec<UidDigest> = self
            .store
            .active_of(account)
            .await?
            .into_iter()
            .filter(|uid| *uid != keep)
            .collect();
        if others.is_empty() {
            return Ok(others);
        }
        self.revoke(account, Some(others)).await
    }

    /// The account's active tabs with where and when each signed in, and its last use (as
    /// memory knows it with one server; as the store was told with several).
    pub async fn tabs(&self, account: AccountId) -> Result<Vec<TabDetails>, StoreError> {
        let mut tabs = self.store.tabs_of(account).await?;
        self.with_last_use(tabs.iter_mut());
        tabs.sort_by_key(|tab| (tab.issued_at, tab.uid));
        Ok(tabs)
    }

    /// One page of every account's active tabs, for administrators (see
    /// [`SessionStore::tabs_page`]), with their last use as [`tabs`](Self::tabs) has it.
    pub async fn all_tabs(
        &self,
        search: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<TabsPage, StoreError> {
        let mut page = self.store.tabs_page(search, offset, limit).await?;
        self.with_last_use(page.tabs.iter_mut().map(|(_, _, tab)| tab));
        Ok(page)
    }

    /// Moves each tab's last use to memory's, where memory knows a later one (one server:
    /// the store is told of uses only as the idle timeout needs).
    fn with_last_use<'t>(&self, tabs: impl Iterator<Item = &'t mut TabDetails>) {
        if let Truth::Memory(sessions) = &self.truth {
            let sessions = read(sessions);
            for tab in tabs {
                if let Ok(found) = sessions.find(&tab.uid) {
                    tab.last_seen = tab.last_seen.max(found.last_seen());
                }
            }
        }
    }

    /// When `tab` timed out (its lifetime, or its idle timeout), if it has: it is still the
    /// store's active tab until something ends it, but no request of it is accepted.
    pub fn timed_out_at(&self, tab: &TabDetails) -> Option<UnixMillis> {
        let expiry = self.expiry(tab.issued_at);
        let idle = self.idle_until(tab.last_seen);
        expiry
            .into_iter()
            .chain(idle)
            .min()
            .filter(|at| *at <= UnixMillis::now())
    }

    /// Forgets sessions that ended before `ended_before`, in the store and in memory.
    ///
    /// Memory is swept in batches: each takes the write lock for [`PRUNE_BATCH`] removals
    /// only, so checks go on between them however large the history.
    pub async fn prune(&self, ended_before: UnixMillis) -> Result<u64, StoreError> {
        let _write = self.writes.lock().await;
        let removed = self.store.prune(ended_before).await?;
        if let Truth::Memory(sessions) = &self.truth {
            let expired = read(sessions).ended_before(ended_before);
            for batch in expired.chunks(PRUNE_BATCH) {
                write(sessions).forget_keys(batch);
            }
        }
        Ok(removed)
    }

    /// Keeps at most [`MAX_ENDED_PER_ACCOUNT`] ended UIDs of `account`, in the store and in
    /// memory. Called with the write mutex held, after `ended_one` said whether the step
    /// before ended a UID. With one server it costs no I/O until the bound is passed; with
    /// several, memory does not count, so every step that ended a UID asks the store.
    ///
    /// A failure here is only logged: the claim or release before it has committed and must
    /// be answered, and the next one of the account tries again.
    async fn bound_history(&self, account: AccountId, ended_one: bool) {
        let over = match &self.truth {
            Truth::Memory(sessions) => read(sessions).ended_count(account) > MAX_ENDED_PER_ACCOUNT,
            Truth::Shared(_) => ended_one,
        };
        if !over {
            return;
        }
        match self
            .store
            .forget_oldest(account, MAX_ENDED_PER_ACCOUNT)
            .await
        {
            Ok(forgotten) => {
                if let Truth::Memory(sessions) = &self.truth {
                    let mut sessions = write(sessions);
                    for uid in &forgotten {
                        sessions.forget(uid);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "bounding an account's history failed; will retry")
            }
        }
    }

    /// Hands ends made by other instances to this server's push channels, until `fan_out`
    /// closes. A notice that says when and why is told as it is (the store committed it);
    /// one that does not is checked against the store (only for UIDs watched here); and
    /// after every (re)subscription every watched UID is, so an end made while the
    /// subscription was down is still told. UIDs the store could not be read for are tried
    /// again every [`RECHECK_AFTER`].
    pub async fn follow(&self, mut fan_out: mpsc::Receiver<FanOut>) {
        let mut unsure: HashSet<UidDigest> = HashSet::new();
        loop {
            let event = if unsure.is_empty() {
                fan_out.recv().await
            } else {
                tokio::select! {
                    event = fan_out.recv() => event,
                    () = tokio::time::sleep(RECHECK_AFTER) => {
                        let again: Vec<_> = unsure.drain().collect();
                        self.tell_ended(again, &mut unsure).await;
                        continue;
                    }
                }
            };
            match event {
                None => return,
                Some(FanOut::Ended(uid, ending)) => match ending {
                    // The notice says why: no store read stands between it and the tab.
                    Some(ending) => self
                        .watchers
                        .ended(&uid, Rejection::ended(ending.at, &ending.reason)),
                    None if self.watchers.is_watched(&uid) => {
                        self.tell_ended([uid], &mut unsure).await;
                    }
                    None => {}
                },
                Some(FanOut::Subscribed) => {
                    let watched = self.watchers.watched_uids();
                    if !watched.is_empty() {
                        tracing::info!(
                            channels = watched.len(),
                            "fan-out back: re-checking every watched uid"
                        );
                    }
                    self.tell_ended(watched, &mut unsure).await;
                }
            }
        }
    }

    /// Reads each of `uids` in the store and tells its watches if it ended; the ones that
    /// could not be read go into `unsure`.
    async fn tell_ended(
        &self,
        uids: impl IntoIterator<Item = UidDigest>,
        unsure: &mut HashSet<UidDigest>,
    ) {
        for uid in uids {
            match self.check_digest(&uid, Use::Peek).await {
                Ok(_) => {}
                Err(NotAccepted::Refused(refused)) => self.watchers.ended(&uid, refused.rejection),
                Err(NotAccepted::Store(e)) => {
                    if unsure.is_empty() {
                        tracing::warn!(error = %e, "fan-out: cannot read the store; will re-check");
                    }
                    unsure.insert(uid);
                }
            }
        }
    }

    /// How many tabs are active: in memory with one server, in the store with several.
    pub async fn active_tabs(&self) -> Result<u64, StoreError> {
        match &self.truth {
            Truth::Memory(sessions) => Ok(read(sessions).counts().0 as u64),
            Truth::Shared(_) => self.store.count_active().await,
        }
    }

    /// How many sessions are active and remembered in memory (for logs and metrics);
    /// `None` when the store is shared and memory holds none.
    pub fn counts(&self) -> Option<(usize, usize)> {
        match &self.truth {
            Truth::Memory(sessions) => Some(read(sessions).counts()),
            Truth::Shared(_) => None,
        }
    }

    /// Breaks "latest wins" on purpose: from now on a claim leaves the UIDs it supersedes
    /// accepted. Only for showing that the history checker (tests/history) catches it; a
    /// registry on a shared store has no memory to break.
    #[cfg(feature = "fault-injection")]
    pub fn break_latest_wins(&self) {
        if let Truth::Memory(sessions) = &self.truth {
            write(sessions).keep_superseded = true;
        }
    }

    /// How many UIDs have at least one watch (for logs, metrics and tests).
    pub fn watched(&self) -> usize {
        self.watchers.watched()
    }
}

/// Usernames never change, so a shared registry may keep each one it has read.
fn remember_username(
    usernames: &RwLock<HashMap<AccountId, Arc<str>>>,
    account: AccountId,
    username: Arc<str>,
) {
    if !read(usernames).contains_key(&account) {
        write(usernames).insert(account, username);
    }
}

// Updates under a write guard are plain map operations that cannot panic halfway, so a
// poisoned lock still guards consistent data.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests;
