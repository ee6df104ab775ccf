//! The one API client. Every request goes through [`send`], the only code that reads the
//! tab's UID (it adds the `x-tab-uid` header) and the only code that interprets a refusal.
//!
//! How answers are read:
//! - 2xx: the value.
//! - 401 to a request that carried the UID: the tab is no longer active. `superseded` shows
//!   who took over; any other code, known or not, means "signed out".
//! - a network failure or a 5xx: the server is unreachable, NOT a sign-out; the tab keeps
//!   its UID and the caller retries.
//! - any other 4xx: the server's error, to show in plain words.

use gloo_net::http::{Request, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::contract::{
    Credentials, ErrorBody, ErrorCode, LoggedIn, Me, Premium, Registered, TAB_UID_HEADER,
};
use crate::session::{Session, TabState};

/// The tab's credential. Opaque outside this module: no accessor, and `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct TabUid(String);

impl std::fmt::Debug for TabUid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TabUid(<redacted>)")
    }
}

/// Why a call did not return a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiError {
    /// Network failure or server error: keep the UID, try again later.
    Unreachable,
    /// The tab's UID was refused; [`Session`] now says why (superseded or signed out).
    SignedOut,
    /// The server refused the request itself (wrong password, taken username...).
    Refused(ErrorBody),
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
}

pub async fn register(session: Session, creds: &Credentials) -> Result<Registered, ApiError> {
    json(send(session, Request::post("/api/register"), Some(creds), false).await?).await
}

/// Signs this tab in; on success the session holds the new UID.
pub async fn login(session: Session, creds: &Credentials) -> Result<(), ApiError> {
    let done: LoggedIn =
        json(send(session, Request::post("/api/login"), Some(creds), false).await?).await?;
    session.set(TabState::Active {
        uid: TabUid(done.uid),
        username: done.username,
        issued_at: done.issued_at,
    });
    Ok(())
}

pub async fn me(session: Session) -> Result<Me, ApiError> {
    json(send(session, Request::get("/api/me"), None::<&()>, true).await?).await
}

pub async fn premium(session: Session) -> Result<Premium, ApiError> {
    json(send(session, Request::get("/api/premium"), None::<&()>, true).await?).await
}

/// Ends this tab's sign-in on the server, then forgets the UID.
pub async fn logout(session: Session) -> Result<(), ApiError> {
    send(session, Request::post("/api/logout"), None::<&()>, true).await?;
    session.sign_out(Some("You signed out.".into()));
    Ok(())
}

/// A 2xx answer's JSON body. One that does not parse is a server fault: retry later.
async fn json<T: DeserializeOwned>(response: Response) -> Result<T, ApiError> {
    response
        .json::<T>()
        .await
        .map_err(|_| ApiError::Unreachable)
}

/// The one place a request is sent, the UID attached, and the answer interpreted.
/// Returns the response only if it is a 2xx.
async fn send<B: Serialize>(
    session: Session,
    request: RequestBuilder,
    body: Option<&B>,
    with_uid: bool,
) -> Result<Response, ApiError> {
    let mut request = request.header("accept", "application/json");
    if with_uid {
        let Some(TabUid(uid)) = session.uid_untracked() else {
            return Err(ApiError::SignedOut);
        };
        request = request.header(TAB_UID_HEADER, &uid);
    }
    let sent = match body {
        Some(body) => match request.json(body) {
            Ok(request) => request.send().await,
            Err(_) => return Err(ApiError::Unreachable),
        },
        None => request.send().await,
    };
    let Ok(response) = sent else {
        session.set_unreachable(true);
        return Err(ApiError::Unreachable);
    };
    let status = response.status();
    if status >= 500 {
        session.set_unreachable(true);
        return Err(ApiError::Unreachable);
    }
    session.set_unreachable(false);
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let error = response
        .json::<ErrorBody>()
        .await
        .unwrap_or_else(|_| ErrorBody {
            error: ErrorCode::Other,
            message: format!("The server answered {status}."),
            superseded_at: None,
            user_agent: None,
            ip: None,
        });
    if status == 401 && with_uid {
        refused(session, error);
        return Err(ApiError::SignedOut);
    }
    Err(ApiError::Refused(error))
}
/// The server no longer accepts this tab's UID: forget it and say why.
fn refused(session: Session, error: ErrorBody) {
    let username = session.active_username().unwrap_or_default();
    match error.error {
        ErrorCode::Superseded => session.set(TabState::Superseded {
            username,
            at: error.superseded_at.unwrap_or_default(),
            user_agent: error.user_agent,
            ip: error.ip,
        }),
        ErrorCode::LoggedOut => session.sign_out(Some("This tab was signed out.".into())),
        _ => session.sign_out(Some(
            "Your sign-in is no longer valid. Please sign in again.".into(),
        )),
    }
}
