//! The HTTP edge's one error type: every failure becomes a status and a stable JSON code.

use std::time::Duration;

use app::contract::{ErrorBody, ErrorCode};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::passwords::PasswordError;
use crate::registry::Rejection;
use crate::store::StoreError;
use crate::time::UnixMillis;

/// How long after a takeover the superseded tab is shown who took over (browser, IP).
/// Later, a holder of the old UID (a thief included) learns only when it happened.
pub const SUPERSEDED_DETAILS_FOR: Duration = Duration::from_secs(24 * 60 * 60);

/// What a refusal may tell about the login that took over (see SECURITY.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Disclosure {
    /// Never show the newer login's IP address.
    pub hide_ip: bool,
}

/// Why a protected request's tab UID was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TabRefusal {
    Missing,
    Malformed,
    Rejected(Rejection),
}

impl TabRefusal {
    /// The body of the 401, and of the push channel's `ended` message: the one place a
    /// refusal becomes words on the wire. Who took over is told only within
    /// [`SUPERSEDED_DETAILS_FOR`] of the takeover, and the IP not at all if `disclosure` hides it.
    pub fn body(&self, disclosure: Disclosure, now: UnixMillis) -> ErrorBody {
        let message = match self {
            TabRefusal::Missing => {
                "This request needs the tab's UID in the x-tab-uid header. Sign in first.".into()
            }
            TabRefusal::Malformed => {
                "The x-tab-uid header must be a lower-case hyphenated UUID v4.".into()
            }
            TabRefusal::Rejected(Rejection::Unknown) => {
                "This tab's sign-in is not known (it may have expired). Sign in again.".into()
            }
            TabRefusal::Rejected(Rejection::Superseded { at, .. }) => format!(
                "Your account was signed in elsewhere at {}; this tab is no longer active.",
                at.to_rfc3339()
            ),
            TabRefusal::Rejected(Rejection::LoggedOut { .. }) => {
                "This tab has signed out. Sign in again.".into()
            }
            TabRefusal::Rejected(Rejection::Revoked { at }) => format!(
                "This tab was signed out from elsewhere at {} (another tab of the account, or an \
                 administrator). Sign in again.",
                at.to_rfc3339()
            ),
            TabRefusal::Rejected(Rejection::Expired { at }) => format!(
                "This tab's sign-in expired at {}: a sign-in lasts a limited time here. Sign in \
                 again.",
                at.to_rfc3339()
            ),
            TabRefusal::Rejected(Rejection::Idle { at, after }) => format!(
                "This tab's sign-in expired at {} after {} without activity. Sign in again.",
                at.to_rfc3339(),
                humantime::format_duration(*after)
            ),
        };
        let mut body = error_body(self.code(), message);
        if let TabRefusal::Rejected(Rejection::Idle { after, .. }) = self {
            body.idle_secs = Some(after.as_secs());
        }
        if let TabRefusal::Rejected(Rejection::Superseded { at, by }) = self {
            body.superseded_at = Some(at.to_rfc3339());
            if now.minus(SUPERSEDED_DETAILS_FOR) <= *at {
                body.user_agent = by.user_agent.as_deref().map(str::to_owned);
                body.ip = (!disclosure.hide_ip).then(|| by.ip.to_string());
            }
        }
        body
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            TabRefusal::Missing => ErrorCode::MissingUid,
            TabRefusal::Malformed => ErrorCode::MalformedUid,
            TabRefusal::Rejected(Rejection::Unknown) => ErrorCode::UnknownUid,
            TabRefusal::Rejected(Rejection::Superseded { .. }) => ErrorCode::Superseded,
            TabRefusal::Rejected(Rejection::LoggedOut { .. }) => ErrorCode::LoggedOut,
            TabRefusal::Rejected(Rejection::Revoked { .. }) => ErrorCode::Revoked,
            TabRefusal::Rejected(Rejection::Expired { .. } | Rejection::Idle { .. }) => {
                ErrorCode::Expired
            }
        }
    }
}

fn error_body(code: ErrorCode, message: String) -> ErrorBody {
    ErrorBody {
        error: code,
        message,
        superseded_at: None,
        user_agent: None,
        ip: None,
        retry_after_secs: None,
        active_since: None,
        idle_secs: None,
    }
}

#[derive(Debug)]
pub enum ApiError {
    Refused(TabRefusal, Disclosure),
    InvalidCredentials,
    /// No valid device cookie for "Use here".
    NoDevice,
    /// The request's Origin is missing or not this site.
    CrossSite,
    /// Too many failed logins (or registrations): try again after this long.
    TooManyAttempts {
        retry_after: Duration,
    },
    UpgradeRequired,
    /// `POST /api/password` with a current password that is not the account's.
    WrongPassword,
    /// `/api/admin/*` from a tab whose account is not an administrator.
    NotAdmin,
    /// The deny-new policy refused a login: the account has had an active tab since then.
    AccountInUse {
        since: UnixMillis,
    },
    /// The request (its body included) did not arrive in time.
    RequestTimeout,
    InvalidInput(String),
    UsernameTaken,
    MalformedJson(String),
    BodyTooLarge,
    UnsupportedMediaType,
    NotFound,
    /// `POST /api/sessions/sign-out` named no active tab of the account.
    NoSuchTab,
    /// `POST /api/sessions/sign-out` named no signed-in browser of the account.
    NoSuchBrowser,
    /// An admin action named no account.
    NoSuchAccount,
    MethodNotAllowed,
    /// Something on our side failed. The detail is logged once, never sent.
    Unavailable(String),
    /// The store failed or cannot be reached; nothing was changed. Logged once, never sent.
    StoreUnavailable(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::StoreUnavailable(err)
    }
}

impl From<PasswordError> for ApiError {
    fn from(err: PasswordError) -> Self {
        ApiError::Unavailable(err.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            JsonRejection::JsonDataError(e) => ApiError::MalformedJson(e.body_text()),
            JsonRejection::JsonSyntaxError(e) => ApiError::MalformedJson(e.body_text()),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::BodyTooLarge,
            other => ApiError::MalformedJson(other.body_text()),
        }
    }
}

impl ApiError {
    fn parts(self) -> (StatusCode, ErrorBody) {
        let body = error_body;
        match self {
            ApiError::Refused(refusal, disclosure) => (
                StatusCode::UNAUTHORIZED,
                refusal.body(disclosure, UnixMillis::now()),
            ),
            ApiError::NoDevice => (
                StatusCode::UNAUTHORIZED,
                body(
                    ErrorCode::NoDevice,
                    "This browser has no valid sign-in to resume. Sign in with your password."
                        .into(),
                ),
            ),
            ApiError::TooManyAttempts { retry_after } => {
                // Whole seconds, rounded up, and never 0: "now" would invite a retry loop.
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                let secs = secs.max(1);
                let minutes = secs.div_ceil(60);
                let mut body = body(
                    ErrorCode::TooManyAttempts,
                    format!(
                        "Too many attempts. Try again in {minutes} minute{}.",
                        if minutes == 1 { "" } else { "s" }
                    ),
                );
                body.retry_after_secs = Some(secs);
                (StatusCode::TOO_MANY_REQUESTS, body)
            }
            // Not 401: that would tell the tab its UID was refused.
            ApiError::WrongPassword => (
                StatusCode::FORBIDDEN,
                body(
                    ErrorCode::WrongPassword,
                    "Your current password is not right. Nothing was changed.".into(),
                ),
            ),
            ApiError::NotAdmin => (
                StatusCode::FORBIDDEN,
                body(
                    ErrorCode::NotAdmin,
                    "Only an administrator may do this (see `server admin grant`).".into(),
                ),
            ),
            ApiError::AccountInUse { since } => {
                let mut body = body(
                    ErrorCode::AccountInUse,
                    format!(
                        "Your account is in use in another tab (signed in at {}). Only one tab \
                         at a time is allowed: sign out there, or sign that tab out and continue \
                         here.",
                        since.to_rfc3339()
                    ),
                );
                body.active_since = Some(since.to_rfc3339());
                (StatusCode::CONFLICT, body)
            }
            ApiError::CrossSite => (
                StatusCode::FORBIDDEN,
                body(
                    ErrorCode::CrossSite,
                    "This request must come from a page of this site.".into(),
                ),
            ),
            ApiError::RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                body(
                    ErrorCode::RequestTimeout,
                    "The request took too long to arrive. Try again.".into(),
                ),
            ),
            ApiError::UpgradeRequired => (
                StatusCode::UPGRADE_REQUIRED,
                body(
                    ErrorCode::UpgradeRequired,
                    "This endpoint is a WebSocket: open it with an Upgrade request.".into(),
                ),
            ),
            ApiError::InvalidCredentials => (
                StatusCode::UNAUTHORIZED,
                body(
                    ErrorCode::InvalidCredentials,
                    "Wrong username or password.".into(),
                ),
            ),
            ApiError::InvalidInput(message) => (
                StatusCode::BAD_REQUEST,
                body(ErrorCode::InvalidInput, message),
            ),
            ApiError::UsernameTaken => (
                StatusCode::CONFLICT,
                body(
                    ErrorCode::UsernameTaken,
                    "That username is taken. Choose another one.".into(),
                ),
            ),
            ApiError::MalformedJson(detail) => (
                StatusCode::BAD_REQUEST,
                body(
                    ErrorCode::MalformedJson,
                    format!("The request body is not the JSON expected: {detail}"),
                ),
            ),
            ApiError::BodyTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                body(
                    ErrorCode::BodyTooLarge,
                    format!(
                        "The request body is over {} KiB.",
                        app::contract::MAX_BODY_BYTES / 1024
                    ),
                ),
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                body(
                    ErrorCode::UnsupportedMediaType,
                    "Send the request body as application/json.".into(),
                ),
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                body(ErrorCode::NotFound, "There is no such API endpoint.".into()),
            ),
            ApiError::NoSuchAccount => (
                StatusCode::NOT_FOUND,
                body(ErrorCode::NotFound, "No account has that username.".into()),
            ),
            ApiError::NoSuchTab => (
                StatusCode::NOT_FOUND,
                body(
                    ErrorCode::NotFound,
                    "No active tab of this account has that id; it may have ended already.".into(),
                ),
            ),
            ApiError::NoSuchBrowser => (
                StatusCode::NOT_FOUND,
                body(
                    ErrorCode::NotFound,
                    "No browser signed in to this account has that id; it may be signed out already."
                        .into(),
                ),
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                body(
                    ErrorCode::MethodNotAllowed,
                    "This endpoint does not accept that method.".into(),
                ),
            ),
            ApiError::Unavailable(detail) => {
                tracing::error!(error = %detail, "request failed on the server side");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    body(
                        ErrorCode::Unavailable,
                        "The server cannot handle this right now. Try again shortly.".into(),
                    ),
                )
            }
            ApiError::StoreUnavailable(err) => {
                // An outage fails every request: one line a second, and a count.
                if super::refusal_log::first_of_its_kind("store_unavailable") {
                    tracing::error!(error = %err, "the store failed");
                }
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    body(
                        ErrorCode::StoreUnavailable,
                        "The server cannot reach its database right now. Nothing was changed; \
                         try again shortly."
                            .into(),
                    ),
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.parts();
        let retry_after = body.retry_after_secs;
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::store::LoginOrigin;

    fn superseded(at: UnixMillis) -> TabRefusal {
        TabRefusal::Rejected(Rejection::Superseded {
            at,
            by: LoginOrigin {
                user_agent: Some("Firefox/140.0".into()),
                ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
            },
        })
    }

    #[test]
    fn who_took_over_is_told_for_a_day_and_the_ip_only_if_allowed() {
        let at = UnixMillis::from_millis(1_795_455_571_123);
        let soon = UnixMillis::from_millis(at.as_millis() + 60_000);
        let body = superseded(at).body(Disclosure::default(), soon);
        assert_eq!(body.user_agent.as_deref(), Some("Firefox/140.0"));
        assert_eq!(body.ip.as_deref(), Some("192.0.2.7"));

        let hidden = superseded(at).body(Disclosure { hide_ip: true }, soon);
        assert_eq!(hidden.user_agent.as_deref(), Some("Firefox/140.0"));
        assert_eq!(hidden.ip, None);

        let a_day_later =
            UnixMillis::from_millis(at.as_millis() + SUPERSEDED_DETAILS_FOR.as_millis() as i64 + 1);
        let late = superseded(at).body(Disclosure::default(), a_day_later);
        assert_eq!(
            late.superseded_at, body.superseded_at,
            "when is always told"
        );
        assert_eq!((late.user_agent, late.ip), (None, None));
    }
}
