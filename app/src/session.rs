//! What this tab shows about its sign-in, and every transition between those states.
//!
//! It holds no credential: the UID is [`crate::api`]'s alone, kept outside the reactive
//! graph (nothing renders it). `api` drives these transitions; pages only read them.

use leptos::prelude::*;

/// The tab's sign-in state, as the pages show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TabState {
    /// No UID. `notice` says why, when there is something to say; `username` pre-fills the
    /// login form.
    SignedOut {
        notice: Option<String>,
        username: Option<String>,
    },
    /// This tab holds its account's current UID.
    Active { username: String, issued_at: String },
    /// A newer sign-in of the account took over at `at`; from the server, who it was.
    Superseded {
        username: String,
        at: String,
        user_agent: Option<String>,
        ip: Option<String>,
    },
}

/// The tab's session, shared through context. Copy: it is a handle to signals.
#[derive(Clone, Copy)]
pub struct Session {
    state: RwSignal<TabState>,
    /// The last API request failed for want of the server (network failure or a 5xx).
    http_unreachable: RwSignal<bool>,
    /// The push channel is down and reconnecting.
    channel_down: RwSignal<bool>,
}

impl Session {
    pub fn provide() -> Self {
        let session = Self {
            state: RwSignal::new(TabState::SignedOut {
                notice: None,
                username: None,
            }),
            http_unreachable: RwSignal::new(false),
            channel_down: RwSignal::new(false),
        };
        provide_context(session);
        session
    }

    pub fn expect() -> Self {
        expect_context::<Self>()
    }

    /// The state, tracked: views and effects that call it follow every change.
    pub fn state(&self) -> TabState {
        self.state.get()
    }

    /// The signed-in username, if this tab is active (tracked).
    pub fn active_username(&self) -> Option<String> {
        self.state.with(|s| match s {
            TabState::Active { username, .. } => Some(username.clone()),
            _ => None,
        })
    }

    /// When this tab's sign-in was issued, if it is active (a one-off read).
    pub fn issued_at_untracked(&self) -> Option<String> {
        self.state.with_untracked(|s| match s {
            TabState::Active { issued_at, .. } => Some(issued_at.clone()),
            _ => None,
        })
    }

    /// Whether the server cannot be reached now, by requests or by the push channel.
    /// Never a sign-out: the tab keeps its UID and retries.
    pub fn unreachable(&self) -> bool {
        self.http_unreachable.get() || self.channel_down.get()
    }

    // The transitions. `api` calls them; pages call `sign_out` and `registered` only.

    /// Signed in (login or "Use here").
    pub(crate) fn activate(&self, username: String, issued_at: String) {
        self.channel_down.set(false);
        self.state.set(TabState::Active {
            username,
            issued_at,
        });
    }

    /// A newer sign-in of this account took over.
    pub(crate) fn supersede(&self, at: String, user_agent: Option<String>, ip: Option<String>) {
        let username = self.username_untracked().unwrap_or_default();
        self.channel_down.set(false);
        self.state.set(TabState::Superseded {
            username,
            at,
            user_agent,
            ip,
        });
    }

    /// No longer signed in; the login form says `notice` and keeps the name.
    pub fn sign_out(&self, notice: Option<String>) {
        let username = self.username_untracked();
        self.channel_down.set(false);
        self.state.set(TabState::SignedOut { notice, username });
    }

    /// An account was just created: the login form says so and has the name filled in.
    pub fn registered(&self, username: String) {
        self.state.set(TabState::SignedOut {
            notice: Some(format!("Account {username} created. Sign in to continue.")),
            username: Some(username),
        });
    }

    pub(crate) fn set_http_unreachable(&self, unreachable: bool) {
        if self.http_unreachable.get_untracked() != unreachable {
            self.http_unreachable.set(unreachable);
        }
    }

    #[cfg(feature = "hydrate")]
    pub(crate) fn set_channel_down(&self, down: bool) {
        if self.channel_down.get_untracked() != down {
            self.channel_down.set(down);
        }
    }

    /// The account this tab is or was signed in to (a one-off read, never tracked).
    fn username_untracked(&self) -> Option<String> {
        self.state.with_untracked(|s| match s {
            TabState::Active { username, .. } | TabState::Superseded { username, .. } => {
                Some(username.clone())
            }
            TabState::SignedOut { username, .. } => username.clone(),
        })
    }
}
