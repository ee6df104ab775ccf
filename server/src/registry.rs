//! The enforcement core: which tab UID each account accepts.
//!
//! "Latest wins": [`Registry::claim`] makes a fresh UID the account's only active one and
//! reports what it superseded. [`Registry::check`] answers every protected request from
//! memory, without I/O and without holding a lock across an await. [`Registry::release`]
//! ends a UID on logout. [`Registry::watch`] lets a push channel wait for its UID to end.
//!
//! The [`SessionStore`] is the durable truth; memory is its write-through cache. Writes go
//! through one async mutex so that memory applies store results in the order the store
//! committed them (otherwise two racing claims could leave both UIDs active in memory).
//!
//! Every end (takeover, logout) is announced to the watches of the UIDs it ended, and to
//! no one else (see [`watch`]). A watch is taken under the same read lock as a check, so an
//! end cannot slip between "it is active" and "tell me when it ends".

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::store::{
    AccountId, ActiveSession, EndReason, EndedSession, LoginOrigin, SessionStore, StoreError,
};
use crate::time::UnixMillis;
use crate::uid::{Uid, UidDigest};

mod sessions;
mod watch;

pub use sessions::Session;
use sessions::Sessions;
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

/// Why a UID is not accepted. Policies to come (timeouts, forced sign-out, deny-new) add
/// variants here, and every layer above maps them to the wire by matching on this type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Never issued here, or forgotten after the history period.
    Unknown,
    /// A newer login of the same account took over at `at`, from `by`.
    Superseded { at: UnixMillis, by: LoginOrigin },
    /// The tab logged out at `at`.
    LoggedOut { at: UnixMillis },
}

/// A UID that was refused, with the account it belonged to if known (for logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub rejection: Rejection,
    pub username: Option<Arc<str>>,
}

/// The outcome of a successful [`Registry::claim`].
#[derive(Debug, Clone)]
pub struct Claimed {
    pub uid: Uid,
    pub session: ActiveSession,
    /// Every session this login ended. Under latest-wins at most one; the type allows several.
    pub superseded: Vec<(UidDigest, EndedSession)>,
}

/// Why [`Registry::watch`] gave no watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchRefused {
    /// The UID is not active.
    Refused(Refused),
    /// The UID already has [`MAX_WATCHES_PER_UID`] watches.
    TooMany,
}

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("the uid is not active")]
    Refused(Refused),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Rejection {
    fn of(ended: &EndedSession) -> Self {
        match &ended.reason {
            EndReason::Superseded { by } => Rejection::Superseded {
                at: ended.ended_at,
                by: by.clone(),
            },
            EndReason::LoggedOut => Rejection::LoggedOut { at: ended.ended_at },
        }
    }
}

/// Cheap to clone: clones share one registry.
#[derive(Debug, Clone)]
pub struct Registry {
    store: Arc<dyn SessionStore>,
    // std RwLock, not tokio's: it is held only for a map operation and never across an
    // await, so readers on the hot path never yield.
    sessions: Arc<RwLock<Sessions>>,
    // Serialises store write + memory update (see the module docs). Held across the store's
    // await, which is why it is tokio's.
    writes: Arc<tokio::sync::Mutex<()>>,
    watchers: Arc<Watchers>,
}

impl Registry {
    /// Loads what the store holds (active sessions, and ended ones within `history`).
    pub async fn load(store: Arc<dyn SessionStore>, history: Duration) -> Result<Self, StoreError> {
        let snapshot = store.load(UnixMillis::now().minus(history)).await?;
        let sessions = Sessions::new(snapshot);
        Ok(Self {
            store,
            sessions: Arc::new(RwLock::new(sessions)),
            writes: Arc::new(tokio::sync::Mutex::new(())),
            watchers: Arc::default(),
        })
    }

    /// Is `uid` the active UID of its account? Memory only: one lookup, no I/O, no await,
    /// no allocation.
    pub fn check(&self, uid: &Uid) -> Result<Session, Refused> {
        let digest = uid.digest();
        self.read().check(&digest)
    }

    /// The username of `account`, if it has a UID in memory.
    pub fn username(&self, account: AccountId) -> Option<Arc<str>> {
        self.read().username(account)
    }

    /// Like [`check`](Self::check), and if `uid` is active, a [`Watch`] that resolves when
    /// it stops being so. At most [`MAX_WATCHES_PER_UID`] watches per UID.
    pub fn watch(&self, uid: &Uid) -> Result<(Session, Watch), WatchRefused> {
        // Subscribing under the read lock: an end needs the write lock first, and announces
        // itself after, so this watch either sees the end here or is told of it.
        let digest = uid.digest();
        let sessions = self.read();
        let session = sessions.check(&digest).map_err(WatchRefused::Refused)?;
        let watch = self
            .watchers
            .subscribe(digest)
            .ok_or(WatchRefused::TooMany)?;
        Ok((session, watch))
    }

    /// Whether `account` has an active tab now.
    pub fn is_active(&self, account: AccountId) -> bool {
        self.read().is_active(account)
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
        let claimed = self
            .claim_if(account, username, origin, async { Ok(true) })
            .await?;
        claimed.ok_or_else(|| StoreError::Backend("an unconditional claim was refused".into()))
    }

    /// [`claim`](Self::claim), but only if `still_allowed` answers true when it is checked:
    /// after every earlier claim and release has committed, and before any later one starts.
    /// `None` means it answered false, and nothing changed.
    ///
    /// This is what makes "Use here" exact: the device is checked in the same step as the
    /// claim, so a password login from another browser (which ends the device, then claims)
    /// either comes first and is seen, or comes after and wins.
    pub async fn claim_if(
        &self,
        account: AccountId,
        username: Arc<str>,
        origin: LoginOrigin,
        still_allowed: impl Future<Output = Result<bool, StoreError>> + Send + 'static,
    ) -> Result<Option<Claimed>, StoreError> {
        let this = self.clone();
        tokio::spawn(async move {
            let _write = this.writes.lock().await;
            if !still_allowed.await? {
                return Ok(None);
            }
            let uid = Uid::generate();
            let session = ActiveSession {
                account,
                username,
                issued_at: UnixMillis::now(),
                origin,
            };
            let digest = uid.digest();
            let superseded = this.store.claim(digest, &session).await?;
            {
                let mut sessions = this.write();
                let ends_superseded = sessions.ends_superseded();
                for (old, ended) in superseded.iter().filter(|_| ends_superseded) {
                    sessions.end(old, ended);
                }
                let started = Session {
                    account,
                    issued_at: session.issued_at,
                };
                sessions.start(&digest, started, &session.username);
            }
            for (old, ended) in &superseded {
                this.watchers.ended(old, Rejection::of(ended));
            }
            this.bound_history(account).await;
            Ok(Some(Claimed {
                uid,
                session,
                superseded,
            }))
        })
        .await
        .map_err(|_| StoreError::Task)?
    }

    /// Ends `uid` (logout). A UID that is not active is refused with its rejection, and
    /// nothing changes.
    pub async fn release(&self, uid: Uid) -> Result<EndedSession, ReleaseError> {
        let this = self.clone();
        tokio::spawn(async move {
            let _write = this.writes.lock().await;
            let digest = uid.digest();
            let session = this.read().check(&digest).map_err(ReleaseError::Refused)?;
            let at = UnixMillis::now();
            if !this.store.release(digest, at).await? {
                // Memory said active but the store disagrees: only possible if the store was
                // changed behind our back. Fail closed rather than guess.
                return Err(
                    StoreError::Backend("store and memory disagree on a uid".into()).into(),
                );
            }
            let username = this.username(session.account).unwrap_or_default();
            let ended = EndedSession {
                account: session.account,
                username,
                ended_at: at,
                reason: EndReason::LoggedOut,
            };
            this.write().end(&digest, &ended);
            this.watchers.ended(&digest, Rejection::of(&ended));
            this.bound_history(ended.account).await;
            Ok(ended)
        })
        .await
        .map_err(|_| ReleaseError::Store(StoreError::Task))?
    }

    /// Forgets sessions that ended before `ended_before`, in the store and in memory.
    ///
    /// Memory is swept in batches: each takes the write lock for [`PRUNE_BATCH`] removals
    /// only, so checks go on between them however large the history.
    pub async fn prune(&self, ended_before: UnixMillis) -> Result<u64, StoreError> {
        let _write = self.writes.lock().await;
        let removed = self.store.prune(ended_before).await?;
        let expired = self.read().ended_before(ended_before);
        for batch in expired.chunks(PRUNE_BATCH) {
            self.write().forget_keys(batch);
        }
        Ok(removed)
    }

    /// Keeps at most [`MAX_ENDED_PER_ACCOUNT`] ended UIDs of `account`, in the store and in
    /// memory. Called with the write mutex held; costs no I/O until the bound is passed.
    ///
    /// A failure here is only logged: the claim or release before it has committed and must
    /// be answered, and the next one of the account tries again.
    async fn bound_history(&self, account: AccountId) {
        if self.read().ended_count(account) <= MAX_ENDED_PER_ACCOUNT {
            return;
        }
        match self
            .store
            .forget_oldest(account, MAX_ENDED_PER_ACCOUNT)
            .await
        {
            Ok(forgotten) => {
                let mut sessions = self.write();
                for uid in &forgotten {
                    sessions.forget(uid);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "bounding an account's history failed; will retry")
            }
        }
    }

    /// How many sessions are active and remembered (for logs and metrics).
    pub fn counts(&self) -> (usize, usize) {
        self.read().counts()
    }

    /// Breaks "latest wins" on purpose: from now on a claim leaves the UIDs it supersedes
    /// accepted. Only for showing that the history checker (tests/history) catches it.
    #[cfg(feature = "fault-injection")]
    pub fn break_latest_wins(&self) {
        self.write().keep_superseded = true;
    }

    /// How many UIDs have at least one watch (for logs, metrics and tests).
    pub fn watched(&self) -> usize {
        self.watchers.watched()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Sessions> {
        // Updates under the write guard are plain map operations that cannot panic halfway,
        // so a poisoned lock still guards consistent data.
        self.sessions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Sessions> {
        self.sessions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests;
