//! The admin API: every active tab (searchable, paged), signing an account out, setting an
//! account's policy. Only for a tab whose account has the admin role (`server admin grant`);
//! every action goes into the target account's history.

use app::contract::{AdminPolicy, AdminSignOut, AdminTab, AdminTabs, ErrorBody, SignedOut};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::{ActiveTab, ApiError, ApiJson, AppState};
use crate::config::AccountPolicy;
use crate::store::{AccountRecord, EventKind, LoginOrigin};

/// Tabs per page of `GET /api/admin/tabs`.
pub const PAGE_SIZE: usize = 50;

/// The account of `tab`, if it is an administrator; else 403 `not_admin`. Read on every
/// request: a revoked role takes effect at once.
async fn admin_of(state: &AppState, tab: &ActiveTab) -> Result<AccountRecord, ApiError> {
    let username = state
        .registry
        .username(tab.session.account)
        .unwrap_or_default();
    let key = app::rules::username_key(&username);
    match state.accounts.find(&key).await? {
        Some(account) if account.admin => Ok(account),
        _ => Err(ApiError::NotAdmin),
    }
}

/// The account an admin action names, or 404.
async fn target(state: &AppState, username: &str) -> Result<AccountRecord, ApiError> {
    let key = app::rules::username_key(username.trim());
    state
        .accounts
        .find(&key)
        .await?
        .ok_or(ApiError::NoSuchAccount)
}

#[derive(Debug, Deserialize)]
pub(super) struct TabsQuery {
    search: Option<String>,
    page: Option<u32>,
}

#[utoipa::path(get, path = "/api/admin/tabs", tag = "admin",
    params(
        ("x-tab-uid" = String, Header, description = "An administrator's tab UID."),
        ("search" = Option<String>, Query, description = "Only accounts whose username contains this (any case)."),
        ("page" = Option<u32>, Query, description = "From 1 (the default); 50 tabs a page."),
    ),
    responses(
        (status = 200, description = "One page of every account's active tabs, by username.", body = AdminTabs),
        (status = 400, description = "`invalid_input`: a malformed query.", body = ErrorBody),
        (status = 403, description = "`not_admin`.", body = ErrorBody),
    ))]
pub(super) async fn tabs(
    State(state): State<AppState>,
    tab: ActiveTab,
    query: Result<Query<TabsQuery>, QueryRejection>,
) -> Result<Json<AdminTabs>, ApiError> {
    admin_of(&state, &tab).await?;
    let Query(query) = query.map_err(|_| {
        ApiError::InvalidInput("`page` must be a whole number from 1; `search` text.".into())
    })?;
    let page = query.page.unwrap_or(1).max(1);
    let search = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let offset = (page as usize - 1).saturating_mul(PAGE_SIZE);
    let found = state.registry.all_tabs(search, offset, PAGE_SIZE).await?;
    let pages = found.total.div_ceil(PAGE_SIZE as u64).max(1);
    Ok(Json(AdminTabs {
        tabs: found
            .tabs
            .into_iter()
            .map(|(_, username, t)| AdminTab {
                username: username.to_string(),
                signed_in_at: t.issued_at.to_rfc3339(),
                last_seen: t.last_seen.to_rfc3339(),
                user_agent: t.origin.user_agent.as_deref().map(str::to_owned),
                ip: t.origin.ip.to_string(),
                timed_out_at: state.registry.timed_out_at(&t).map(|at| at.to_rfc3339()),
            })
            .collect(),
        total: found.total,
        page,
        pages: u32::try_from(pages).unwrap_or(u32::MAX),
    }))
}

#[utoipa::path(post, path = "/api/admin/sign-out", tag = "admin", request_body = AdminSignOut,
    params(("x-tab-uid" = String, Header, description = "An administrator's tab UID.")),
    responses(
        (status = 200, description = "Every tab of the account is signed out, each told `revoked` at once, and no browser may \"Use here\" for it: the password is needed again.", body = SignedOut),
        (status = 403, description = "`not_admin`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such account.", body = ErrorBody),
    ))]
pub(super) async fn sign_out(
    State(state): State<AppState>,
    tab: ActiveTab,
    origin: LoginOrigin,
    ApiJson(request): ApiJson<AdminSignOut>,
) -> Result<Json<SignedOut>, ApiError> {
    let admin = admin_of(&state, &tab).await?;
    let account = target(&state, &request.username).await?;
    // Its browsers first: none may "Use here" its way back in once the tabs end.
    let browsers = state.devices.forget_all(account.id).await?;
    let ended = state.registry.revoke(account.id, None).await?;
    tracing::warn!(admin = %admin.username, account = %account.username, tabs = ended.len(), browsers, "an administrator signed an account out");
    state.metrics.revoked(ended.len());
    state
        .history
        .record(account.id, EventKind::AdminSignOut, Some(&origin))
        .await;
    Ok(Json(SignedOut { tabs: ended.len() }))
}

#[utoipa::path(post, path = "/api/admin/policy", tag = "admin", request_body = AdminPolicy,
    params(("x-tab-uid" = String, Header, description = "An administrator's tab UID.")),
    responses(
        (status = 204, description = "Set; it applies from the account's next sign-in."),
        (status = 400, description = "`invalid_input`: an unknown policy, or a `max_tabs` missing (max-tabs), out of 1 to 64, or given with another policy.", body = ErrorBody),
        (status = 403, description = "`not_admin`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such account.", body = ErrorBody),
    ))]
pub(super) async fn policy(
    State(state): State<AppState>,
    tab: ActiveTab,
    origin: LoginOrigin,
    ApiJson(request): ApiJson<AdminPolicy>,
) -> Result<StatusCode, ApiError> {
    let admin = admin_of(&state, &tab).await?;
    let name =
        <AccountPolicy as clap::ValueEnum>::from_str(&request.policy, false).map_err(|_| {
            ApiError::InvalidInput(
                "`policy` must be latest-wins, deny-new, max-tabs or default.".into(),
            )
        })?;
    let policy = name
        .policy(request.max_tabs)
        .map_err(|e| ApiError::InvalidInput(e.to_string()))?;
    let account = target(&state, &request.username).await?;
    if !state.accounts.set_policy(account.id, policy).await? {
        return Err(ApiError::NoSuchAccount);
    }
    let shown = policy.map_or_else(|| "default".to_owned(), |p| p.to_string());
    tracing::info!(admin = %admin.username, account = %account.username, policy = %shown, "an administrator set an account's policy");
    state
        .history
        .record(account.id, EventKind::AdminPolicy, Some(&origin))
        .await;
    Ok(StatusCode::NO_CONTENT)
}
