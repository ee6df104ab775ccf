//! The one API client, and the only owner of the tab's UID.
//!
//! The UID lives here, in memory, outside the reactive graph (nothing renders it). Every
//! request goes through [`send`], the one place the `x-tab-uid` header is added; the push
//! channel ([`channel`], browser only) is the one other reader, for its hello.
//!
//! Every sign-in transition goes through this module, and every "this UID has ended" (a
//! 401, the channel's `ended`, another tab's `taken`) names the UID it is about: one that is
//! no longer the tab's current UID is ignored, so a late refusal can never end a newer
//! sign-in.
//!
//! How answers are read:
//! - 2xx: the value.
//! - 401 to a request that carried the UID: the tab is no longer active. `superseded` shows
//!   who took over; any other code, known or not, means "signed out".
//! - a network failure or a 5xx: the server is unreachable, NOT a sign-out; the tab keeps
//!   its UID and the caller retries.
//! - any other 4xx: the server's error, to show in plain words.

use std::cell::RefCell;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::contract::{
    AccountSessions, AdminPolicy, AdminSignOut, AdminTabs, Credentials, Device, ErrorBody,
    ErrorCode, LoggedIn, Me, PasswordChange, Premium, Registered, SignOut, SignedOut, TakeBack,
    UseHere,
};
use crate::session::Session;

#[cfg(feature = "hydrate")]
mod channel;
#[cfg(feature = "hydrate")]
mod tabs;
mod transport;

/// The tab's credential. Its text is readable only in this module and its children, and
/// `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
struct TabUid(String);

impl std::fmt::Debug for TabUid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TabUid(<redacted>)")
    }
}

thread_local! {
    // One tab, one wasm instance, one thread. The server never sets it: it renders pages
    // signed out and never calls this module.
    static CURRENT: RefCell<Option<TabUid>> = const { RefCell::new(None) };
    // The UID this tab is logging out, so that the channel's `logged_out`, which may come
    // before the logout's own answer, is told as "you signed out".
    static LEAVING: RefCell<Option<TabUid>> = const { RefCell::new(None) };
}

fn current() -> Option<TabUid> {
    CURRENT.with_borrow(Clone::clone)
}

#[cfg(feature = "hydrate")]
fn is_current(uid: &TabUid) -> bool {
    CURRENT.with_borrow(|current| current.as_ref() == Some(uid))
}

const SIGNED_OUT: &str = "You signed out.";

/// Why a call did not return a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiError {
    /// Network failure or server error: keep the UID, try again later.
    Unreachable,
    /// The tab's UID was refused; [`Session`] now says why (superseded or signed out).
    SignedOut,
    /// The server refused the request itself (wrong password, taken username...).
    Refused(Box<ErrorBody>),
}

impl ApiError {
    /// Plain words for a person.
    pub fn message(&self) -> String {
        match self {
            ApiError::Unreachable => {
                "Cannot reach the server. Check your connection; we will keep trying.".into()
            }
            ApiError::SignedOut => "You are signed out.".into(),
            ApiError::Refused(body) => body.message.clone(),
        }
    }

    /// The error code, for a refusal by the server.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ApiError::Refused(body) => Some(body.error),
            _ => None,
        }
    }
}

/// Starts listening to the other tabs of this browser (once, after hydration).
pub fn listen_to_other_tabs(session: Session) {
    #[cfg(feature = "hydrate")]
    tabs::listen(session);
    #[cfg(not(feature = "hydrate"))]
    let _ = session;
}

pub async fn register(session: Session, creds: &Credentials) -> Result<Registered, ApiError> {
    json(send(session, "POST", "/api/register", Some(creds), None).await?)
}

/// Signs this tab in with the password; on success the tab is active with the new UID.
pub async fn login(session: Session, creds: &Credentials) -> Result<(), ApiError> {
    let done = json(send(session, "POST", "/api/login", Some(creds), None).await?)?;
    start(session, done);
    Ok(())
}

/// "That wasn't me": takes the account back with its password and a new one; on success
/// this tab is active again and every other tab is signed out.
pub async fn take_back(session: Session, request: &TakeBack) -> Result<(), ApiError> {
    let done = json(send(session, "POST", "/api/not-me", Some(request), None).await?)?;
    start(session, done);
    Ok(())
}

/// Whether this browser may "Use here", and for whom.
pub async fn device(session: Session) -> Result<Device, ApiError> {
    json(send(session, "GET", "/api/device", None::<&()>, None).await?)
}

/// Takes the account over in this tab without the password (this browser's device);
/// `takeover` signs out an active tab that the server's policy would otherwise protect.
pub async fn use_here(session: Session, takeover: bool) -> Result<(), ApiError> {
    let body = UseHere { takeover };
    let done = json(send(session, "POST", "/api/use-here", Some(&body), None).await?)?;
    start(session, done);
    Ok(())
}

pub async fn me(session: Session) -> Result<Me, ApiError> {
    let uid = current().ok_or(ApiError::SignedOut)?;
    json(send(session, "GET", "/api/me", None::<&()>, Some(uid)).await?)
}

pub async fn premium(session: Session) -> Result<Premium, ApiError> {
    let uid = current().ok_or(ApiError::SignedOut)?;
    json(send(session, "GET", "/api/premium", None::<&()>, Some(uid)).await?)
}

/// The account's active tabs and recent events ("Your sessions").
pub async fn sessions(session: Session) -> Result<AccountSessions, ApiError> {
    let uid = current().ok_or(ApiError::SignedOut)?;
    json(send(session, "GET", "/api/sessions", None::<&()>, Some(uid)).await?)
}

/// Signs one other tab of the account out, or every other tab and browser.
pub async fn sign_out_elsewhere(
    session: Session,
    request: &SignOut,
) -> Result<SignedOut, ApiError> {
    let uid = current().ok_or(ApiError::SignedOut)?;
    json(
        send(
            session,
            "POST",
            "/api/sessions/sign-out",
            Some(request),
            Some(uid),
        )
        .await?,
    )
}

/// One page of every account's active tabs (administrators only).
pub async fn admin_tabs(session: Session, search: &str, page: u32) -> Result<AdminTabs, ApiError> {
    let uid = current().ok_or(ApiError::SignedOut)?;
    let path = format!("/api/admin/tabs?search={}&page={page}", query_value(search));
    json(send(session, "GET", &path, None::<&()>, Some(uid)).await?)
}

/// Signs every tab of an account out (administrators only).
pub async fn admin_sign_out(session: Session, username: &str) -> Result<SignedOut, ApiError> {
    let uid = current().ok_or(ApiError::SignedOut)?;
    let body = AdminSignOut {
        username: username.to_owned(),
    };
    json(
        send(
            session,
            "POST",
            "/api/admin/sign-out",
            Some(&body),
            Some(uid),
        )
        .await?,
    )
}

/// Sets an account's own policy (administrators only).
pub async fn admin_policy(session: Session, request: &AdminPolicy) -> Result<(), ApiError> {
    let uid = current().ok_or(ApiError::SignedOut)?;
    send(
        session,
        "POST",
        "/api/admin/policy",
        Some(request),
        Some(uid),
    )
    .await?;
    Ok(())
}

/// `text` as a URL query value: unreserved characters as they are, the rest percent-encoded.
pub(crate) fn query_value(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Changes the account's password from this (active) tab.
pub async fn change_password(session: Session, change: &PasswordChange) -> Result<(), ApiError> {
    let uid = current().ok_or(ApiError::SignedOut)?;
    send(session, "POST", "/api/password", Some(change), Some(uid)).await?;
    Ok(())
}

/// Ends this tab's sign-in (and this browser's "Use here") on the server, then forgets it.
pub async fn logout(session: Session) -> Result<(), ApiError> {
    let uid = current().ok_or(ApiError::SignedOut)?;
    LEAVING.set(Some(uid.clone()));
    let sent = send(
        session,
        "POST",
        "/api/logout",
        None::<&()>,
        Some(uid.clone()),
    )
    .await;
    LEAVING.set(None);
    sent?;
    end(&uid, || session.sign_out(Some(SIGNED_OUT.into())));
    Ok(())
}

/// A fresh UID (login or "Use here"): the tab becomes active with it, opens its push
/// channel, and tells the browser's other tabs.
fn start(session: Session, done: LoggedIn) {
    let uid = TabUid(done.uid);
    CURRENT.set(Some(uid.clone()));
    #[cfg(feature = "hydrate")]
    {
        tabs::announce_taken(&done.issued_at);
        channel::open(session, uid);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = uid;
    session.activate(done.username, done.issued_at);
}

/// The server no longer accepts `uid` (a 401, or the channel's `ended`): forget it and say
/// why. Nothing happens if `uid` is no longer this tab's.
fn ended(session: Session, uid: &TabUid, error: ErrorBody) {
    end(uid, || {
        match error.error {
        ErrorCode::Superseded => session.supersede(
            error.superseded_at.unwrap_or_default(),
            error.user_agent,
            error.ip,
        ),
        ErrorCode::LoggedOut => {
            let ours = LEAVING.with_borrow(|leaving| leaving.as_ref() == Some(uid));
            let notice = if ours {
                SIGNED_OUT
            } else {
                "This tab was signed out."
            };
            session.sign_out(Some(notice.into()));
        }
        ErrorCode::Revoked => session.sign_out(Some(
            "This tab was signed out from elsewhere (another tab of your account, or an administrator). Please sign in again."
                .into(),
        )),
        ErrorCode::Expired => session.sign_out(Some(match error.idle_secs {
            Some(secs) => format!(
                "Your sign-in in this tab has expired after {} without activity. Please sign in again.",
                crate::display::duration(secs)
            ),
            None => "Your sign-in in this tab has expired: sign-ins last a limited time here. Please sign in again."
                .into(),
        })),
        _ => session.sign_out(Some(
            "Your sign-in is no longer valid. Please sign in again.".into(),
        )),
    }
    });
}

/// Forgets `uid` and applies `then`, if `uid` is still the current one.
fn end(uid: &TabUid, then: impl FnOnce()) {
    let was_current = CURRENT.with_borrow_mut(|current| {
        let was = current.as_ref() == Some(uid);
        if was {
            *current = None;
        }
        was
    });
    if was_current {
        then();
    }
}

/// A 2xx answer's JSON body. One that does not parse is a server fault: retry later.
fn json<T: DeserializeOwned>(body: String) -> Result<T, ApiError> {
    transport::from_json(&body).ok_or(ApiError::Unreachable)
}

/// The one place a request is sent, the UID attached, and the answer interpreted.
/// Returns the body of a 2xx.
async fn send<B: Serialize>(
    session: Session,
    method: &'static str,
    path: &str,
    body: Option<&B>,
    uid: Option<TabUid>,
) -> Result<String, ApiError> {
    let body = match body.map(transport::to_json) {
        Some(Some(text)) => Some(text),
        Some(None) => return Err(ApiError::Unreachable),
        None => None,
    };
    let header = uid.as_ref().map(|TabUid(text)| text.as_str());
    let Ok((status, text)) = transport::fetch(method, path, header, body).await else {
        session.set_http_unreachable(true);
        return Err(ApiError::Unreachable);
    };
    if status >= 500 {
        session.set_http_unreachable(true);
        return Err(ApiError::Unreachable);
    }
    session.set_http_unreachable(false);
    if (200..300).contains(&status) {
        return Ok(text);
    }
    let error = transport::from_json::<ErrorBody>(&text).unwrap_or_else(|| ErrorBody {
        error: ErrorCode::Other,
        message: format!("The server answered {status}."),
        superseded_at: None,
        user_agent: None,
        ip: None,
        retry_after_secs: None,
        active_since: None,
        idle_secs: None,
    });
    if let (401, Some(uid)) = (status, &uid) {
        ended(session, uid, error);
        return Err(ApiError::SignedOut);
    }
    Err(ApiError::Refused(Box::new(error)))
}
