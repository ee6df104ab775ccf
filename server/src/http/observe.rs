//! Observe mode (`--mode observe`, or an account's own): what enforcement would reject is
//! served instead, and logged and counted (`solotab_observed_total{code}`), so a site can
//! watch what Solotab would do before turning it on. Enforcement itself is unchanged: the
//! registry still records every takeover, so switching to `enforce` applies at once.

use std::sync::Arc;

use super::TabRefusal;
use super::refusal_log;
use crate::metrics::Metrics;
use crate::registry::{Refused, Rejection};
use crate::store::{AccountStore, Mode, StoreError};

/// Decides, for a refusal, whether the account is only observed. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Observer {
    pub(super) mode: Mode,
    pub(super) accounts: Arc<dyn AccountStore>,
    pub(super) metrics: Metrics,
}

impl Observer {
    /// An observer for a server in `mode`, reading accounts' own modes from `accounts`.
    pub fn new(mode: Mode, accounts: Arc<dyn AccountStore>, metrics: Metrics) -> Self {
        Self {
            mode,
            accounts,
            metrics,
        }
    }

    /// The mode of an account with `own` mode: its own, else the server's.
    pub fn mode_for(&self, own: Option<Mode>) -> Mode {
        own.unwrap_or(self.mode)
    }

    /// Whether a request refused with `refused` is served anyway (its account is observed);
    /// if so, it is counted and logged as what enforcement would have rejected. A UID
    /// nobody knows is never served: there is no account to serve it as. Reads the
    /// account's own mode (refusals only).
    pub async fn lets_through(&self, refused: &Refused) -> Result<bool, StoreError> {
        let Some(username) = refused.username.as_deref() else {
            return Ok(false);
        };
        if refused.rejection == Rejection::Unknown || refused.account.is_none() {
            return Ok(false);
        }
        let key = app::rules::username_key(username);
        let own = self.accounts.find(&key).await?.and_then(|a| a.mode);
        if self.mode_for(own) != Mode::Observe {
            return Ok(false);
        }
        self.observed(
            TabRefusal::Rejected(refused.rejection.clone())
                .code()
                .as_str(),
            username,
        );
        Ok(true)
    }

    /// Counts and logs (once a second at most) what enforcement would have refused with
    /// `code` for `username`'s account.
    pub fn observed(&self, code: &'static str, username: &str) {
        self.metrics.observed(code);
        if refusal_log::first_of_its_kind("observed") {
            tracing::info!(
                code,
                account = username,
                "observe mode: would have rejected; served"
            );
        }
    }
}
