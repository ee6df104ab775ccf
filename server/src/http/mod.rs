//! The HTTP API: a thin layer that parses, calls the core, and maps results to the contract.
//!
//! Routes that need no tab UID are exactly those in [`public_routes`] (plus `/healthz` and
//! the pages and `/pkg` assets served by the site, which are outside `/api`). Every route in
//! [`protected_routes`] takes an [`ActiveTab`], so it cannot run without a valid UID.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use app::contract::{CHANNEL_PATH, MAX_BODY_BYTES};
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::{HeaderValue, header};
use axum::routing::{any, get, post};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::device::Devices;
use crate::history::History;
use crate::metrics::Metrics;
use crate::passwords::Passwords;
use crate::proxies::TrustedProxies;
use crate::registry::Registry;
use crate::store::{AccountStore, Mode};
use crate::throttle::Throttle;

mod admin;
mod channel;
mod device_cookie;
mod error;
mod extract;
mod handlers;
mod observe;
mod openapi;
mod origin;
mod refusal_log;

use handlers::{
    change_password, device, healthz, login, logout, me, premium, register, sessions, sign_out,
    take_back, use_here,
};

pub use channel::Channels;
pub use device_cookie::{DeviceCookie, SetDeviceCookie, served_over_https};
pub use error::{ApiError, Disclosure, SUPERSEDED_DETAILS_FOR, TabRefusal};
pub use extract::{ActiveTab, ApiJson};
pub use observe::Observer;
pub use openapi::ApiDoc;
pub use origin::{AllowedOrigins, SameOrigin};

/// What every handler may use: one reference count, because axum clones the state for every
/// request (the parts it holds are about thirty more).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The server's parts, shared by every request through [`AppState`].
#[derive(Debug)]
pub struct Services {
    pub registry: Registry,
    pub accounts: Arc<dyn AccountStore>,
    pub devices: Devices,
    pub passwords: Passwords,
    pub channels: Channels,
    pub origins: AllowedOrigins,
    pub disclosure: Disclosure,
    pub throttles: Throttles,
    pub proxies: TrustedProxies,
    pub metrics: Metrics,
    pub history: History,
    /// The server's `--mode` (an account may have its own).
    pub mode: Mode,
}

/// The brute-force limits (see [`crate::throttle`]). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Throttles {
    /// Failed logins per client (IPv6 by /64).
    pub login_by_ip: Arc<Throttle<IpAddr>>,
    /// Failed logins per username key (existing or not: both answer alike).
    pub login_by_account: Arc<Throttle<String>>,
    /// Registrations per client.
    pub registrations_by_ip: Arc<Throttle<IpAddr>>,
}

impl Throttles {
    pub fn new(max_login_failures: usize, max_registrations_per_hour: usize) -> Self {
        let quarter_hour = Duration::from_secs(15 * 60);
        Self {
            login_by_ip: Arc::new(Throttle::new(max_login_failures, quarter_hour)),
            login_by_account: Arc::new(Throttle::new(max_login_failures, quarter_hour)),
            registrations_by_ip: Arc::new(Throttle::new(
                max_registrations_per_hour,
                Duration::from_secs(60 * 60),
            )),
        }
    }
}

/// The key a client is throttled under: its IPv4 address, or its IPv6 /64 (one host
/// usually holds a whole /64, and could rotate through it).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// How the `ActiveTab` extractor reaches the registry: by reference, on every request.
impl AsRef<Registry> for AppState {
    fn as_ref(&self) -> &Registry {
        &self.registry
    }
}

impl FromRef<AppState> for Registry {
    fn from_ref(state: &AppState) -> Self {
        state.registry.clone()
    }
}

impl FromRef<AppState> for Metrics {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}

impl FromRef<AppState> for Observer {
    fn from_ref(state: &AppState) -> Self {
        Observer {
            mode: state.mode,
            accounts: Arc::clone(&state.accounts),
            metrics: state.metrics.clone(),
        }
    }
}

impl FromRef<AppState> for History {
    fn from_ref(state: &AppState) -> Self {
        state.history.clone()
    }
}

impl FromRef<AppState> for Disclosure {
    fn from_ref(state: &AppState) -> Self {
        state.disclosure
    }
}

impl FromRef<AppState> for TrustedProxies {
    fn from_ref(state: &AppState) -> Self {
        state.proxies.clone()
    }
}

impl FromRef<AppState> for AllowedOrigins {
    fn from_ref(state: &AppState) -> Self {
        state.origins.clone()
    }
}

/// `/api/*` and `/healthz`, ready to merge into the site's router.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(public_routes())
        .merge(protected_routes())
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    Router::new()
        .nest("/api", api)
        // `nest` matches `/api` and `/api/...` but not `/api/` itself.
        .route("/api/", any(|| async { ApiError::NotFound }))
        .route("/healthz", get(healthz))
        // API answers are per-tab and often secret: no cache may keep them.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// The API routes that need no tab UID.
fn public_routes() -> Router<AppState> {
    let channel_path = CHANNEL_PATH.trim_start_matches("/api");
    Router::new()
        .route("/register", post(register))
        .route("/login", post(login))
        // "That wasn't me": the password (and a new one), not a UID, authorises it.
        .route("/not-me", post(take_back))
        // The device cookie, not a UID, authorises these two (same-origin only for use-here).
        .route("/device", get(device))
        .route("/use-here", post(use_here))
        // Same-origin only; the UID comes in the channel's first message, never in the URL.
        .route(channel_path, get(channel::channel))
        .route("/openapi.json", get(openapi::document))
}

/// The API routes that need the tab's current UID (each handler takes an [`ActiveTab`]).
fn protected_routes() -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/premium", get(premium))
        .route("/logout", post(logout))
        .route("/password", post(change_password))
        .route("/sessions", get(sessions))
        .route("/sessions/sign-out", post(sign_out))
        .route("/admin/tabs", get(admin::tabs))
        .route("/admin/sign-out", post(admin::sign_out))
        .route("/admin/policy", post(admin::policy))
}
