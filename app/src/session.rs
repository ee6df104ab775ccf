//! What this tab knows about its sign-in. It lives in component memory only: a reload or a
//! new tab starts signed out. The UID inside is readable only by [`crate::api`].

use leptos::prelude::*;

use crate::api::TabUid;

/// The tab's sign-in state.
#[derive(Clone, Debug)]
pub enum TabState {
    /// No UID. `notice` says why, when there is something to say; `username` pre-fills the
    /// login form.
    SignedOut {
        notice: Option<String>,
        username: Option<String>,
    },
    /// This tab holds its account's current UID.
    Active {
        uid: TabUid,
        username: String,
        issued_at: String,
    },
    /// A newer login of the account took over; the details come from the server.
    Superseded {
        username: String,
        at: String,
        user_agent: Option<String>,
        ip: Option<String>,
    },
}

/// The tab's session, shared through context. Copy: it is a handle to one signal.
#[derive(Clone, Copy)]
pub struct Session {
    state: RwSignal<TabState>,
    /// True while the server cannot be reached (network failure or a 5xx). Not a sign-out.
    unreachable: RwSignal<bool>,
}

impl Session {
    pub fn provide() -> Self {
        let session = Self {
            state: RwSignal::new(TabState::SignedOut {
                notice: None,
                username: None,
            }),
            unreachable: RwSignal::new(false),
        };
        provide_context(session);
        session
    }

    pub fn expect() -> Self {
        expect_context::<Self>()
    }

    pub fn state(&self) -> TabState {
        self.state.get()
    }

    pub fn set(&self, state: TabState) {
        self.state.set(state);
    }

    /// The signed-in username, if this tab is active.
    pub fn active_username(&self) -> Option<String> {
        self.state.with(|s| match s {
            TabState::Active { username, .. } => Some(username.clone()),
            _ => None,
        })
    }

    pub fn sign_out(&self, notice: Option<String>) {
        let username = self.state.with_untracked(|s| match s {
            TabState::Active { username, .. } | TabState::Superseded { username, .. } => {
                Some(username.clone())
            }
            TabState::SignedOut { username, .. } => username.clone(),
        });
        self.state.set(TabState::SignedOut { notice, username });
    }

    pub fn unreachable(&self) -> bool {
        self.unreachable.get()
    }

    pub fn set_unreachable(&self, unreachable: bool) {
        if self.unreachable.get_untracked() != unreachable {
            self.unreachable.set(unreachable);
        }
    }

    /// Read by the API client alone.
    pub(crate) fn uid_untracked(&self) -> Option<TabUid> {
        self.state.with_untracked(|s| match s {
            TabState::Active { uid, .. } => Some(uid.clone()),
            _ => None,
        })
    }
}
