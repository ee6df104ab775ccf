//! What happened to each account, for its owner to read on "Your sessions": sign-ins,
//! takeovers, sign-outs, expiries, stale tabs turned away, password changes.
//!
//! Recording never fails a request: the action it records has happened and must be
//! answered, so a store error is only logged. A refused UID is recorded once, however many
//! requests its tab keeps sending.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::registry::{Refused, Rejection};
use crate::store::{AccountEvent, AccountId, AccountStore, EventKind, LoginOrigin};
use crate::time::UnixMillis;
use crate::uid::UidDigest;

/// How many refused UIDs are remembered as already recorded; past it the memory starts
/// over (a UID may then be recorded a second time, never lost).
const REMEMBERED_REFUSALS: usize = 16_384;

#[derive(Debug, Clone)]
pub struct History {
    accounts: Arc<dyn AccountStore>,
    recorded_refusals: Arc<Mutex<HashSet<UidDigest>>>,
}

impl History {
    pub fn new(accounts: Arc<dyn AccountStore>) -> Self {
        Self {
            accounts,
            recorded_refusals: Arc::default(),
        }
    }

    /// Records `kind` for `account`, caused by a request from `origin` (if one did).
    pub async fn record(&self, account: AccountId, kind: EventKind, origin: Option<&LoginOrigin>) {
        let event = AccountEvent {
            at: UnixMillis::now(),
            kind,
            ip: origin.map(|o| o.ip),
            user_agent: origin.and_then(|o| o.user_agent.as_deref().map(str::to_owned)),
        };
        if let Err(e) = self.accounts.record_event(account, &event).await {
            tracing::warn!(error = %e, kind = kind.as_str(), "cannot record an account event");
        }
    }

    /// Records, once per UID, that `uid` was refused: `expired` for a timeout,
    /// `rejected_stale` for a tab that was superseded, logged out or revoked (a UID nobody
    /// knows has no account to record it for). Returns what it recorded, if it did: the
    /// first time for that UID. Awaited, so the history is in the order things happened.
    pub async fn refused(
        &self,
        uid: &UidDigest,
        refused: &Refused,
        origin: Option<LoginOrigin>,
    ) -> Option<EventKind> {
        let kind = match refused.rejection {
            Rejection::Unknown => return None,
            Rejection::Expired { .. } | Rejection::Idle { .. } => EventKind::Expired,
            Rejection::Superseded { .. }
            | Rejection::LoggedOut { .. }
            | Rejection::Revoked { .. } => EventKind::RejectedStale,
        };
        let account = refused.account?;
        {
            let mut recorded = self
                .recorded_refusals
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if recorded.len() >= REMEMBERED_REFUSALS {
                recorded.clear();
            }
            if !recorded.insert(*uid) {
                return None;
            }
        }
        self.record(account, kind, origin.as_ref()).await;
        Some(kind)
    }
}
