//! Extractors: the request's JSON body, the tab it comes from, and where a login came from.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use app::contract::TAB_UID_HEADER;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts};
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;

use super::Observer;
use super::error::{ApiError, Disclosure, TabRefusal};
use super::refusal_log;
use crate::history::History;
use crate::metrics::Metrics;
use crate::proxies::TrustedProxies;
use crate::registry::{NotAccepted, Registry, Session};
use crate::store::{EventKind, LoginOrigin};
use crate::time::UnixMillis;
use crate::uid::Uid;

/// `axum::Json`, but its rejections speak the contract (`malformed_json`, 413, 415).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// The active tab a protected request comes from.
///
/// Taking this extractor is what makes a handler protected: the request is answered with
/// the contract's 401 unless `x-tab-uid` names the account's current UID, or with 503
/// `store_unavailable` if a shared store cannot be read (see [`Registry::check`]).
#[derive(Debug, Clone)]
pub struct ActiveTab {
    pub uid: Uid,
    pub session: Session,
}

impl<S> FromRequestParts<S> for ActiveTab
where
    S: AsRef<Registry>,
    Disclosure: FromRef<S>,
    Metrics: FromRef<S>,
    History: FromRef<S>,
    Observer: FromRef<S>,
    TrustedProxies: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Borrowed, not cloned: every clone of shared state is atomic reference counts,
        // which the cores serving requests would pass back and forth on every request.
        // What only a refusal needs is taken when one happens.
        let registry: &Registry = state.as_ref();
        let refuse = |refusal: TabRefusal, username: Option<&str>| {
            let code = refusal.code().as_str();
            Metrics::from_ref(state).rejected(code);
            if refusal_log::first_of_its_kind(code) {
                tracing::info!(code, account = username, "request rejected");
            }
            ApiError::Refused(refusal, Disclosure::from_ref(state))
        };
        let mut values = parts.headers.get_all(TAB_UID_HEADER).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            let refusal = if parts.headers.contains_key(TAB_UID_HEADER) {
                TabRefusal::Malformed // sent more than once
            } else {
                TabRefusal::Missing
            };
            return Err(refuse(refusal, None));
        };
        let uid = value
            .to_str()
            .ok()
            .and_then(|text| Uid::parse(text).ok())
            .ok_or_else(|| refuse(TabRefusal::Malformed, None))?;
        match registry.check(&uid).await {
            Ok(session) => Ok(ActiveTab { uid, session }),
            Err(NotAccepted::Refused(refused)) => {
                // Observe mode: served as its account, counted as what would be rejected.
                match Observer::from_ref(state).lets_through(&refused).await {
                    Ok(true) => {
                        let session = Session {
                            account: refused.account.unwrap_or(crate::store::AccountId(0)),
                            // Not active: when it would have stopped being so.
                            issued_at: refused.rejection.at().unwrap_or_else(UnixMillis::now),
                        };
                        return Ok(ActiveTab { uid, session });
                    }
                    Ok(false) => {}
                    Err(e) => return Err(ApiError::StoreUnavailable(e)),
                }
                // The account's owner sees stale and expired tabs turned away (once each).
                let Ok(origin) = LoginOrigin::from_request_parts(parts, state).await;
                let recorded = History::from_ref(state)
                    .refused(&uid.digest(), &refused, Some(origin))
                    .await;
                if recorded == Some(EventKind::Expired) {
                    Metrics::from_ref(state).expired();
                    tracing::info!(account = refused.username.as_deref(), "tab expired");
                }
                Err(refuse(
                    TabRefusal::Rejected(refused.rejection),
                    refused.username.as_deref(),
                ))
            }
            // Fail closed, and say why: the tab must not think it was superseded.
            Err(NotAccepted::Store(e)) => Err(ApiError::StoreUnavailable(e)),
        }
    }
}

/// Longest User-Agent kept with a login; longer ones are cut (they are shown, not parsed).
const MAX_USER_AGENT_CHARS: usize = 256;

impl<S> FromRequestParts<S> for LoginOrigin
where
    S: Send + Sync,
    TrustedProxies: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT_CHARS)
                    .collect::<String>()
            })
            .filter(|ua| !ua.trim().is_empty())
            .map(Arc::from);
        // The peer address as this server sees it. The server is always served with
        // connect info; the fallback only keeps a misconfigured embedding from failing.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| {
                addr.ip()
            });
        let ip = TrustedProxies::from_ref(state).client_ip(peer, &parts.headers);
        Ok(LoginOrigin { user_agent, ip })
    }
}
