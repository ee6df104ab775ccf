//! The handlers: parse, call the core, map the result to the contract. Nothing else.

use std::sync::Arc;

use app::contract::{
    AccountEventInfo, AccountSessions, BrowserInfo, Credentials, Device, ErrorBody, Health,
    LoggedIn, Me, PasswordChange, Premium, Registered, SignOut, SignedOut, TabInfo, TakeBack,
    UseHere,
};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};

use super::{
    ActiveTab, ApiError, ApiJson, AppState, DeviceCookie, SameOrigin, SetDeviceCookie, TabRefusal,
    client_key,
};
use super::{Observer, refusal_log};
use crate::device::DeviceToken;
use crate::metrics::LoginMethod;
use crate::registry::{Claim, Claimed, NotAccepted, Refused, Rejection};
use crate::store::{
    AccountRecord, CreateAccountError, DeviceHash, DeviceRecord, EventKind, LoginOrigin, Mode,
};
use crate::time::UnixMillis;
use crate::uid::{Uid, UidDigest};
use app::contract::ErrorCode;
use axum::extract::FromRef;

#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "The server is up.", body = Health)))]
pub(super) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// `POST /api/register`: creates an account; it does not sign in.
#[utoipa::path(post, path = "/api/register", tag = "accounts", request_body = Credentials,
    responses(
        (status = 201, description = "Created.", body = Registered),
        (status = 400, description = "`invalid_input` (the reason in words: username or password rules), `malformed_json`.", body = ErrorBody),
        (status = 409, description = "`username_taken`.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many registrations from this client; `retry_after_secs` and `Retry-After` say when to try again.", body = ErrorBody),
    ))]
pub(super) async fn register(
    State(state): State<AppState>,
    origin: LoginOrigin,
    ApiJson(creds): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let client = client_key(origin.ip);
    let registrations = &state.throttles.registrations_by_ip;
    registrations.check(&client).map_err(too_many)?;
    let username = app::rules::username(&creds.username)
        .map_err(ApiError::InvalidInput)?
        .to_owned();
    acceptable_new_password(&username, &creds.password)?;
    // Every attempt that gets as far as a hash counts, created or not.
    registrations.failure(&client);
    // Always hash first, then let the store's unique key decide: a taken name costs what a
    // free one costs, so the time of the answer does not tell which names exist.
    let hash = state.passwords.hash(creds.password).await?;
    match state
        .accounts
        .create(&username, &hash, UnixMillis::now())
        .await
    {
        Ok(_) => {
            tracing::info!(account = %username, "registered");
            Ok((StatusCode::CREATED, Json(Registered { username })))
        }
        Err(CreateAccountError::Taken) => Err(ApiError::UsernameTaken),
        Err(CreateAccountError::Store(e)) => Err(e.into()),
    }
}

#[utoipa::path(post, path = "/api/login", tag = "tabs", request_body = Credentials,
    params(("solotab_device" = Option<String>, Cookie, description = "This browser's device cookie, if it has one: exempts it from the account's failure limit.")),
    responses(
        (status = 200, description = "Signed in: `uid` is this tab's credential, every other tab of the account is superseded. Sets the device cookie.", body = LoggedIn),
        (status = 400, description = "`invalid_input` (a field is empty), `malformed_json`.", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`.", body = ErrorBody),
        (status = 409, description = "`account_in_use` (deny-new policy only): the account has an active tab since `active_since`; send the login again with `\"takeover\": true` to sign that tab out.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many failed logins from this client or for this account; `retry_after_secs` and `Retry-After` say when to try again.", body = ErrorBody),
    ))]
/// Logs in with the password. Also makes this browser one of the account's devices (the
/// cookie that lets it "Use here" later): as many browsers keep theirs as the account's
/// policy allows tabs, so under latest-wins every other browser's ends.
pub(super) async fn login(
    State(state): State<AppState>,
    origin: LoginOrigin,
    cookie: DeviceCookie,
    ApiJson(creds): ApiJson<Credentials>,
) -> Result<(SetDeviceCookie, Json<LoggedIn>), ApiError> {
    let account =
        verified_account(&state, &origin, &cookie, &creds.username, creds.password).await?;
    // Under deny-new, refused before anything changes (the claim checks again atomically;
    // a login losing that race has replaced the device and is refused all the same). A
    // refusal is not a failed login: the password was right.
    let own_policy = account.policy;
    let takeover = creds.takeover || would_be_in_use(&state, &account, creds.takeover).await?;
    let keep = state.registry.policy_for(own_policy).tabs();
    let device = state
        .devices
        .issue(account.id, &origin, cookie.token.as_ref(), keep)
        .await?;
    tracing::debug!(account = %account.username, "this browser is now one of the account's devices");
    let username = account.username.clone();
    let claimed = match state
        .registry
        .login(
            account.id,
            account.username.into(),
            origin,
            own_policy,
            takeover,
        )
        .await?
    {
        Claim::Claimed(claimed) => claimed,
        Claim::InUse { since } => return Err(in_use(&state, &username, since)),
        Claim::NotAllowed => return Err(ApiError::Unavailable("a login was not allowed".into())),
    };
    tracing::info!(account = %claimed.session.username, ip = %claimed.session.origin.ip, "logged in");
    state
        .metrics
        .signed_in(LoginMethod::Password, claimed.superseded.len());
    record_sign_in(&state, &claimed, EventKind::Login).await;
    started_here(&state, &device, &claimed.uid).await;
    let set_cookie = SetDeviceCookie::set(&device, state.devices.lifetime(), cookie.https);
    Ok((set_cookie, Json(logged_in(claimed))))
}

#[utoipa::path(get, path = "/api/device", tag = "tabs",
    params(("solotab_device" = Option<String>, Cookie, description = "This browser's device cookie.")),
    responses(
        (status = 200, description = "This browser may \"Use here\" for `username`.", body = Device),
        (status = 401, description = "`no_device`: no valid device cookie.", body = ErrorBody),
    ))]
/// `GET /api/device`: whether this browser may "Use here", and for whom.
pub(super) async fn device(
    State(state): State<AppState>,
    cookie: DeviceCookie,
) -> Result<Json<Device>, ApiError> {
    let (_, record) = valid_device(&state, cookie).await?;
    Ok(Json(Device {
        active_elsewhere: state.registry.is_active(record.account).await?,
        username: record.username,
    }))
}

#[utoipa::path(post, path = "/api/use-here", tag = "tabs", request_body = UseHere,
    params(("solotab_device" = Option<String>, Cookie, description = "This browser's device cookie.")),
    responses(
        (status = 200, description = "Signed in without the password, as a login would.", body = LoggedIn),
        (status = 409, description = "`account_in_use` (deny-new policy only): the account has an active tab since `active_since`; send `{\"takeover\": true}` to sign that tab out.", body = ErrorBody),
        (status = 400, description = "`malformed_json`.", body = ErrorBody),
        (status = 401, description = "`no_device`: no valid device cookie, or another browser signed in since.", body = ErrorBody),
        (status = 403, description = "`cross_site`: the request's `Origin` is not this site.", body = ErrorBody),
    ))]
/// `POST /api/use-here`: a fresh UID for this browser's device account, without the
/// password; it supersedes the account's active tab like a login.
pub(super) async fn use_here(
    State(state): State<AppState>,
    _same_origin: SameOrigin,
    cookie: DeviceCookie,
    origin: LoginOrigin,
    ApiJson(UseHere { takeover }): ApiJson<UseHere>,
) -> Result<Json<LoggedIn>, ApiError> {
    let (token, record) = valid_device(&state, cookie).await?;
    let device = token.clone();
    // Checked again in the claim's own step: a password login from another browser may have
    // ended this device since (see `Registry::claim_if`).
    let still_valid = {
        let (devices, account, token) = (state.devices.clone(), record.account, Arc::new(token));
        move || {
            let (devices, token) = (devices.clone(), Arc::clone(&token));
            async move {
                let found = devices.find(&token).await?;
                Ok(found.is_some_and(|d| d.account == account))
            }
        }
    };
    let username = record.username.clone();
    // The account's own policy, if it has one ("Use here" follows it as a login does).
    let key = app::rules::username_key(&record.username);
    let account = state.accounts.find(&key).await?.ok_or(ApiError::NoDevice)?;
    let own_policy = account.policy;
    let takeover = takeover || would_be_in_use(&state, &account, takeover).await?;
    let claim = state
        .registry
        .claim_if(
            record.account,
            record.username.into(),
            origin,
            own_policy,
            takeover,
            still_valid,
        )
        .await?;
    let claimed = match claim {
        Claim::Claimed(claimed) => claimed,
        Claim::InUse { since } => return Err(in_use(&state, &username, since)),
        Claim::NotAllowed => return Err(ApiError::NoDevice),
    };
    tracing::info!(account = %claimed.session.username, ip = %claimed.session.origin.ip, "logged in with Use here");
    state
        .metrics
        .signed_in(LoginMethod::UseHere, claimed.superseded.len());
    record_sign_in(&state, &claimed, EventKind::UseHere).await;
    started_here(&state, &device, &claimed.uid).await;
    Ok(Json(logged_in(claimed)))
}

/// The account whose username and password these are, under the brute-force limits: each
/// failure counts against the client's IP and the account (the browser that last signed in
/// to it exempt from the account's block). 401 `invalid_credentials` alike for an unknown
/// user and a wrong password.
async fn verified_account(
    state: &AppState,
    origin: &LoginOrigin,
    cookie: &DeviceCookie,
    username: &str,
    password: String,
) -> Result<AccountRecord, ApiError> {
    if username.trim().is_empty() || password.is_empty() {
        return Err(ApiError::InvalidInput(
            "Enter your username and password.".into(),
        ));
    }
    // Throttled before any hash is computed: a flood of guesses cannot starve real logins.
    let client = client_key(origin.ip);
    let throttles = &state.throttles;
    throttles.login_by_ip.check(&client).map_err(too_many)?;
    // A name or password that breaks the rules cannot belong to an account: no lookup needed,
    // and the answer is the same as for a wrong password.
    let (Ok(name), Ok(())) = (
        app::rules::username(username),
        app::rules::password(&password),
    ) else {
        if refusal_log::first_of_its_kind("invalid_credentials") {
            tracing::info!("login failed: credentials break the input rules");
        }
        throttles.login_by_ip.failure(&client);
        return Err(ApiError::InvalidCredentials);
    };
    let key = app::rules::username_key(name);
    account_not_blocked(state, cookie, &key).await?;
    let account = state.accounts.find(&key).await?;
    // Without an account this verifies against a dummy hash: unknown users cost the same.
    let stored_hash = account.as_ref().map(|a| a.password_hash.clone());
    let verified = state.passwords.verify(password, stored_hash).await?;
    let Some(account) = account.filter(|_| verified) else {
        if refusal_log::first_of_its_kind("invalid_credentials") {
            tracing::info!(account = %name, "login failed: invalid credentials");
        }
        throttles.login_by_ip.failure(&client);
        if let Some(blocked) = throttles.login_by_account.failure(&key) {
            tracing::warn!(account = %name, minutes = blocked.as_secs() / 60, "too many failed logins: account throttled");
        }
        return Err(ApiError::InvalidCredentials);
    };
    throttles.login_by_account.success(&key);
    Ok(account)
}

#[utoipa::path(post, path = "/api/not-me", tag = "tabs", request_body = TakeBack,
    params(("solotab_device" = Option<String>, Cookie, description = "This browser's device cookie, if it has one: exempts it from the account's failure limit.")),
    responses(
        (status = 200, description = "The account is this tab's again: every other tab is signed out (told `revoked`), every other browser's \"Use here\" has ended, and only the new password works. Sets the device cookie.", body = LoggedIn),
        (status = 400, description = "`invalid_input`: a field is empty, or the new password breaks the rules (the message says which); `malformed_json`.", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`; nothing changed.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`, as for a login.", body = ErrorBody),
    ))]
/// `POST /api/not-me`, "That wasn't me": the owner of a superseded tab takes the account
/// back. With the password, it sets a new one (so whoever took over cannot sign in again),
/// ends every other browser's "Use here", signs every tab out (each told `revoked`), and
/// signs this tab in, whatever the account's policy.
pub(super) async fn take_back(
    State(state): State<AppState>,
    origin: LoginOrigin,
    cookie: DeviceCookie,
    ApiJson(request): ApiJson<TakeBack>,
) -> Result<(SetDeviceCookie, Json<LoggedIn>), ApiError> {
    if let Ok(name) = app::rules::username(&request.username) {
        acceptable_new_password(name, &request.new_password)?;
    }
    let account = verified_account(
        &state,
        &origin,
        &cookie,
        &request.username,
        request.password,
    )
    .await?;
    // The new password first: from here on, whoever took over cannot sign in again. Then
    // their browser's "Use here", then their tabs.
    let hash = state.passwords.hash(request.new_password).await?;
    if !state.accounts.set_password(account.id, &hash).await? {
        return Err(ApiError::Unavailable("a verified account is gone".into()));
    }
    let device = state
        .devices
        .issue(account.id, &origin, cookie.token.as_ref(), 1)
        .await?;
    let revoked = state.registry.revoke(account.id, None).await?;
    let claim = state
        .registry
        .login(
            account.id,
            account.username.clone().into(),
            origin,
            account.policy,
            true,
        )
        .await?;
    let Claim::Claimed(claimed) = claim else {
        return Err(ApiError::Unavailable("a take-back was not allowed".into()));
    };
    tracing::warn!(account = %account.username, ip = %claimed.session.origin.ip, other_tabs = revoked.len(), "account taken back (\"that wasn't me\"): other tabs signed out, password changed");
    state.metrics.signed_in(LoginMethod::Password, 0);
    state.metrics.revoked(revoked.len());
    let session = &claimed.session;
    state
        .history
        .record(session.account, EventKind::TakenBack, Some(&session.origin))
        .await;
    started_here(&state, &device, &claimed.uid).await;
    let set_cookie = SetDeviceCookie::set(&device, state.devices.lifetime(), cookie.https);
    Ok((set_cookie, Json(logged_in(claimed))))
}

/// Makes this browser the account's only device (a fresh token, which keeps the tabs the
/// browser started, this one included): no other browser may "Use here".
async fn only_device_here(
    state: &AppState,
    tab: &ActiveTab,
    origin: &LoginOrigin,
    cookie: &DeviceCookie,
) -> Result<SetDeviceCookie, ApiError> {
    let device = state
        .devices
        .issue(tab.session.account, origin, cookie.token.as_ref(), 1)
        .await?;
    started_here(state, &device, &tab.uid).await;
    Ok(SetDeviceCookie::set(
        &device,
        state.devices.lifetime(),
        cookie.https,
    ))
}

/// Links a tab to the browser that signed it in, so signing that browser out ends it too.
/// The tab is already signed in: if the store fails here, it stays so, and the failure is
/// logged (that browser's sign-out would then miss this tab).
async fn started_here(state: &AppState, device: &DeviceToken, tab: &Uid) {
    if let Err(e) = state.devices.started(device, tab.digest()).await {
        tracing::warn!(error = %e, "could not link a tab to its browser");
    }
}

/// The request's device token and what it is valid for, or 401 `no_device`.
async fn valid_device(
    state: &AppState,
    cookie: DeviceCookie,
) -> Result<(DeviceToken, DeviceRecord), ApiError> {
    let token = cookie.token.ok_or(ApiError::NoDevice)?;
    let record = state
        .devices
        .find(&token)
        .await?
        .ok_or(ApiError::NoDevice)?;
    Ok((token, record))
}

/// The account's failed-login block, if any, unless this browser is signed in to it:
/// guesses from elsewhere must not lock the owner out, so that browser is held to its IP's
/// limit only.
async fn account_not_blocked(
    state: &AppState,
    cookie: &DeviceCookie,
    username_key: &String,
) -> Result<(), ApiError> {
    if let Err(retry_after) = state.throttles.login_by_account.check(username_key)
        && !signed_in_here(state, cookie, username_key).await?
    {
        return Err(too_many(retry_after));
    }
    Ok(())
}

/// The rules a new password (registration or change) must meet, the common-password list
/// included; the error says which one it breaks.
fn acceptable_new_password(username: &str, password: &str) -> Result<(), ApiError> {
    app::rules::new_password(username, password).map_err(ApiError::InvalidInput)?;
    if crate::passwords::is_common(password) {
        return Err(ApiError::InvalidInput(
            "This password is one of the most common ones, which are guessed first. Choose another."
                .into(),
        ));
    }
    Ok(())
}

/// Whether this request's device cookie belongs to the account with this username key.
async fn signed_in_here(
    state: &AppState,
    cookie: &DeviceCookie,
    username_key: &str,
) -> Result<bool, ApiError> {
    let Some(token) = &cookie.token else {
        return Ok(false);
    };
    let device = state.devices.find(token).await?;
    Ok(device.is_some_and(|d| app::rules::username_key(&d.username) == username_key))
}

/// The username of the account an active tab belongs to (the tab's check keeps it in memory).
fn username(state: &AppState, tab: &ActiveTab) -> String {
    state
        .registry
        .username(tab.session.account)
        .map(|name| name.to_string())
        .unwrap_or_default()
}

/// Under deny-new, whether a sign-in of `account` (not asking to take over) would be
/// refused now, and the account is only observed (observe mode): then it is counted as
/// observed and the sign-in goes ahead as a takeover (true). Refused (409) if the account
/// is enforced; false if nothing would be refused.
async fn would_be_in_use(
    state: &AppState,
    account: &AccountRecord,
    takeover: bool,
) -> Result<bool, ApiError> {
    let Some(since) = state
        .registry
        .in_use(account.id, account.policy, takeover)
        .await?
    else {
        return Ok(false);
    };
    let observer = Observer::from_ref(state);
    if observer.mode_for(account.mode) == Mode::Observe {
        observer.observed(ErrorCode::AccountInUse.as_str(), &account.username);
        return Ok(true);
    }
    Err(in_use(state, &account.username, since))
}

/// 409 `account_in_use` (deny-new), counted, and logged once a second at most.
fn in_use(state: &AppState, username: &str, since: UnixMillis) -> ApiError {
    state.metrics.rejected("account_in_use");
    if refusal_log::first_of_its_kind("account_in_use") {
        tracing::info!(account = %username, "login refused: the account has an active tab (deny-new)");
    }
    ApiError::AccountInUse { since }
}

/// Records a sign-in as `kind`, or as a takeover if it signed another tab out.
async fn record_sign_in(state: &AppState, claimed: &Claimed, kind: EventKind) {
    record_expired(state, claimed).await;
    let kind = if claimed.superseded.is_empty() {
        kind
    } else {
        EventKind::Takeover
    };
    let session = &claimed.session;
    state
        .history
        .record(session.account, kind, Some(&session.origin))
        .await;
}

/// Records the timed-out tabs a sign-in ended, once per tab as a refusal would have: a tab
/// closed before it timed out is never refused, so nothing else tells the history, the
/// expiry count or the log of it.
async fn record_expired(state: &AppState, claimed: &Claimed) {
    let session = &claimed.session;
    for (uid, at) in &claimed.expired {
        let refused = Refused {
            rejection: Rejection::Expired { at: *at },
            account: Some(session.account),
            username: Some(session.username.clone()),
        };
        if state.history.refused(uid, &refused, None).await == Some(EventKind::Expired) {
            state.metrics.expired();
            tracing::info!(account = %session.username, "tab expired");
        }
    }
}

fn too_many(retry_after: std::time::Duration) -> ApiError {
    ApiError::TooManyAttempts { retry_after }
}

fn logged_in(claimed: Claimed) -> LoggedIn {
    for _ in &claimed.superseded {
        tracing::info!(account = %claimed.session.username, "takeover: an older tab was superseded");
    }
    LoggedIn {
        uid: claimed.uid.expose(),
        username: claimed.session.username.to_string(),
        issued_at: claimed.session.issued_at.to_rfc3339(),
    }
}

#[utoipa::path(get, path = "/api/me", tag = "tabs",
    params(("x-tab-uid" = String, Header, description = "The tab's UID, as the login answered it.")),
    responses(
        (status = 200, description = "This tab is the account's active one.", body = Me),
    ))]
pub(super) async fn me(State(state): State<AppState>, tab: ActiveTab) -> Json<Me> {
    Json(Me {
        username: username(&state, &tab),
        issued_at: tab.session.issued_at.to_rfc3339(),
    })
}

#[utoipa::path(get, path = "/api/premium", tag = "tabs",
    params(("x-tab-uid" = String, Header, description = "The tab's UID, as the login answered it.")),
    responses(
        (status = 200, description = "The protected content.", body = Premium),
    ))]
/// The demo's protected content: something only the active tab may read.
pub(super) async fn premium(State(state): State<AppState>, tab: ActiveTab) -> Json<Premium> {
    const LESSONS: [&str; 4] = [
        "Question 1 of the exam: explain why a cookie cannot tell two tabs of one browser apart.",
        "Question 2 of the exam: what should happen to the older tab when a newer login arrives?",
        "Question 3 of the exam: why must a per-tab credential never be stored in localStorage?",
        "Question 4 of the exam: why compare secrets in constant time?",
    ];
    let served_at = UnixMillis::now();
    let lesson = LESSONS[(served_at.as_millis() / 1000).rem_euclid(LESSONS.len() as i64) as usize];
    Json(Premium {
        title: format!("Premium content for {}", username(&state, &tab)),
        body: lesson.into(),
        served_at: served_at.to_rfc3339(),
    })
}

#[utoipa::path(post, path = "/api/password", tag = "tabs", request_body = PasswordChange,
    params(("x-tab-uid" = String, Header, description = "The tab's UID, as the login answered it.")),
    responses(
        (status = 204, description = "Changed. Every other tab is signed out (told `revoked`) and every other browser's \"Use here\" has ended; this browser has a fresh device cookie."),
        (status = 400, description = "`invalid_input`: the new password breaks the rules (the message says which), `malformed_json`.", body = ErrorBody),
        (status = 403, description = "`wrong_password`: the current password given is not the account's; nothing changed.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many wrong passwords from this client or for this account.", body = ErrorBody),
    ))]
/// `POST /api/password`: the active tab changes its account's password, giving the current
/// one. Every other tab is signed out and every other browser's "Use here" ends (each must
/// sign in with the new password); this browser gets a fresh device cookie, and this tab
/// stays active.
pub(super) async fn change_password(
    State(state): State<AppState>,
    tab: ActiveTab,
    origin: LoginOrigin,
    cookie: DeviceCookie,
    ApiJson(change): ApiJson<PasswordChange>,
) -> Result<(SetDeviceCookie, StatusCode), ApiError> {
    let username = username(&state, &tab);
    let key = app::rules::username_key(&username);
    // A stolen UID must not be a way to guess the password: the login limits apply.
    let client = client_key(origin.ip);
    let throttles = &state.throttles;
    throttles.login_by_ip.check(&client).map_err(too_many)?;
    account_not_blocked(&state, &cookie, &key).await?;
    acceptable_new_password(&username, &change.new)?;
    let record = state.accounts.find(&key).await?;
    let stored_hash = record.as_ref().map(|a| a.password_hash.clone());
    if !state.passwords.verify(change.current, stored_hash).await? {
        throttles.login_by_ip.failure(&client);
        throttles.login_by_account.failure(&key);
        return Err(ApiError::WrongPassword);
    }
    let hash = state.passwords.hash(change.new).await?;
    if !state
        .accounts
        .set_password(tab.session.account, &hash)
        .await?
    {
        return Err(ApiError::Unavailable(
            "the account of an active tab is gone".into(),
        ));
    }
    // Every other tab ends (told `revoked` at once), and this browser's device replaces
    // every other (a fresh token for this one).
    let others = state
        .registry
        .revoke_all_but(tab.session.account, &tab.uid)
        .await?;
    let set_cookie = only_device_here(&state, &tab, &origin, &cookie).await?;
    tracing::info!(account = %username, other_tabs = others.len(), "password changed; other tabs and browsers signed out");
    state.metrics.revoked(others.len());
    state
        .history
        .record(
            tab.session.account,
            EventKind::PasswordChanged,
            Some(&origin),
        )
        .await;
    Ok((set_cookie, StatusCode::NO_CONTENT))
}

#[utoipa::path(post, path = "/api/logout", tag = "tabs",
    params(
        ("x-tab-uid" = String, Header, description = "The tab's UID, as the login answered it."),
        ("solotab_device" = Option<String>, Cookie, description = "This browser's device cookie: ended too."),
    ),
    responses(
        (status = 204, description = "Logged out; the device cookie and site data are cleared."),
    ))]
/// Ends this tab's UID, and this browser's device: after a logout, "Use here" needs the
/// password again.
pub(super) async fn logout(
    State(state): State<AppState>,
    tab: ActiveTab,
    origin: LoginOrigin,
    cookie: DeviceCookie,
) -> Result<(SetDeviceCookie, [(HeaderName, HeaderValue); 1], StatusCode), ApiError> {
    if let Some(token) = &cookie.token {
        state.devices.forget(token).await?;
    }
    let clear = SetDeviceCookie::clear(cookie.https);
    // Whatever the browser kept for this site goes too (the UID was never there).
    let clear_site = [(
        HeaderName::from_static("clear-site-data"),
        HeaderValue::from_static("\"cookies\", \"storage\""),
    )];
    match state.registry.release(tab.uid).await {
        Ok(ended) => {
            tracing::info!(account = %ended.username, "logged out");
            state.metrics.logged_out();
            state
                .history
                .record(ended.account, EventKind::Logout, Some(&origin))
                .await;
            Ok((clear, clear_site, StatusCode::NO_CONTENT))
        }
        // Superseded between the check and the release: answer with that rejection.
        Err(NotAccepted::Refused(refused)) => Err(ApiError::Refused(
            TabRefusal::Rejected(refused.rejection),
            state.disclosure,
        )),
        Err(NotAccepted::Store(e)) => Err(e.into()),
    }
}

#[utoipa::path(get, path = "/api/sessions", tag = "tabs",
    params(("x-tab-uid" = String, Header, description = "The tab's UID, as the login answered it.")),
    responses(
        (status = 200, description = "The account's active tabs and its newest events.", body = AccountSessions),
    ))]
/// `GET /api/sessions`: what "Your sessions" shows.
pub(super) async fn sessions(
    State(state): State<AppState>,
    tab: ActiveTab,
    cookie: DeviceCookie,
) -> Result<Json<AccountSessions>, ApiError> {
    let account = tab.session.account;
    let this = tab.uid.digest();
    let this_browser = cookie.token.as_ref().map(DeviceToken::hash);
    let tabs = state.registry.tabs(account).await?;
    let browsers = state.devices.of(account).await?;
    let events = state.accounts.events(account).await?;
    let key = app::rules::username_key(&username(&state, &tab));
    let admin = state.accounts.find(&key).await?.is_some_and(|a| a.admin);
    Ok(Json(AccountSessions {
        admin,
        tabs: tabs
            .into_iter()
            .map(|t| TabInfo {
                id: t.uid.to_hex(),
                this_tab: t.uid == this,
                signed_in_at: t.issued_at.to_rfc3339(),
                last_seen: t.last_seen.to_rfc3339(),
                user_agent: t.origin.user_agent.as_deref().map(str::to_owned),
                ip: t.origin.ip.to_string(),
                timed_out_at: state.registry.timed_out_at(&t).map(|at| at.to_rfc3339()),
            })
            .collect(),
        browsers: browsers
            .into_iter()
            .map(|b| BrowserInfo {
                id: b.hash.to_hex(),
                this_browser: Some(b.hash) == this_browser,
                signed_in_at: b.created_at.to_rfc3339(),
                last_sign_in: b.signed_in_at.to_rfc3339(),
                expires_at: b.expires_at.to_rfc3339(),
                user_agent: b.user_agent,
                ip: b.ip.map(|ip| ip.to_string()),
            })
            .collect(),
        events: events
            .into_iter()
            .map(|e| AccountEventInfo {
                at: e.at.to_rfc3339(),
                kind: e.kind.as_str().into(),
                ip: e.ip.map(|ip| ip.to_string()),
                user_agent: e.user_agent,
            })
            .collect(),
    }))
}

#[utoipa::path(post, path = "/api/sessions/sign-out", tag = "tabs", request_body = SignOut,
    params(("x-tab-uid" = String, Header, description = "The tab's UID, as the login answered it.")),
    responses(
        (status = 200, description = "Signed out; each tab is told `revoked` at once. With `everywhere_else`, this browser has a fresh device cookie and no other browser may \"Use here\".", body = SignedOut),
        (status = 400, description = "`invalid_input`: not exactly one of `tab`, `browser` and `everywhere_else`, a malformed id, or this tab's or this browser's own (use `/api/logout`); `malformed_json`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no active tab, or no browser, of this account has that id (it may have ended already).", body = ErrorBody),
    ))]
/// `POST /api/sessions/sign-out`: signs one other tab of the account out, or one other
/// browser (with the tabs it signed in), or every other tab and browser.
pub(super) async fn sign_out(
    State(state): State<AppState>,
    tab: ActiveTab,
    origin: LoginOrigin,
    cookie: DeviceCookie,
    ApiJson(request): ApiJson<SignOut>,
) -> Result<(Option<SetDeviceCookie>, Json<SignedOut>), ApiError> {
    let account = tab.session.account;
    let (ended, set_cookie) = match (request.tab, request.browser, request.everywhere_else) {
        (Some(id), None, false) => {
            let target = UidDigest::from_hex(&id).ok_or_else(|| {
                ApiError::InvalidInput("`tab` must be an id from GET /api/sessions.".into())
            })?;
            if target == tab.uid.digest() {
                return Err(ApiError::InvalidInput(
                    "That is this tab: sign it out with POST /api/logout.".into(),
                ));
            }
            let ended = state.registry.revoke(account, Some(vec![target])).await?;
            if ended.is_empty() {
                return Err(ApiError::NoSuchTab);
            }
            (ended, None)
        }
        (None, Some(id), false) => {
            let target = DeviceHash::from_hex(&id).ok_or_else(|| {
                ApiError::InvalidInput("`browser` must be an id from GET /api/sessions.".into())
            })?;
            if cookie.token.as_ref().map(DeviceToken::hash) == Some(target) {
                return Err(ApiError::InvalidInput(
                    "That is this browser: sign it out with POST /api/logout.".into(),
                ));
            }
            let tabs = state
                .devices
                .sign_out(account, target)
                .await?
                .ok_or(ApiError::NoSuchBrowser)?;
            // The tabs it signed in; this one cannot be among them (it is another browser's).
            let tabs: Vec<_> = tabs
                .into_iter()
                .filter(|t| *t != tab.uid.digest())
                .collect();
            let ended = if tabs.is_empty() {
                Vec::new()
            } else {
                state.registry.revoke(account, Some(tabs)).await?
            };
            (ended, None)
        }
        (None, None, true) => {
            let ended = state.registry.revoke_all_but(account, &tab.uid).await?;
            let set_cookie = only_device_here(&state, &tab, &origin, &cookie).await?;
            (ended, Some(set_cookie))
        }
        _ => {
            return Err(ApiError::InvalidInput(
                "Send one of {\"tab\": id}, {\"browser\": id} or {\"everywhere_else\": true}."
                    .into(),
            ));
        }
    };
    tracing::info!(
        account = account.0,
        tabs = ended.len(),
        "tabs signed out from the sessions page"
    );
    state.metrics.revoked(ended.len());
    state
        .history
        .record(account, EventKind::Revoked, Some(&origin))
        .await;
    Ok((set_cookie, Json(SignedOut { tabs: ended.len() })))
}
