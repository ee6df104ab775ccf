//! The public HTTP contract, as types both ends share.
//!
//! The server serialises these and the browser deserialises them, so the two agree by
//! construction. Other clients rely on the JSON shapes; the README documents them.

use serde::{Deserialize, Serialize};

/// The header that carries a tab's UID on every protected request.
pub const TAB_UID_HEADER: &str = "x-tab-uid";

/// Largest request body the API accepts, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// `POST /api/register` and `POST /api/login`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// 201 from `POST /api/register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub username: String,
}

/// 200 from `POST /api/login`. `uid` is this tab's credential: keep it in memory only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedIn {
    pub uid: String,
    pub username: String,
    /// RFC 3339 UTC with milliseconds.
    pub issued_at: String,
}

impl std::fmt::Debug for LoggedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggedIn")
            .field("uid", &"<redacted>")
            .field("username", &self.username)
            .field("issued_at", &self.issued_at)
            .finish()
    }
}

/// 200 from `GET /api/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub username: String,
    pub issued_at: String,
}

/// 200 from `GET /api/premium`: the demo's protected content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Premium {
    pub title: String,
    pub body: String,
    pub served_at: String,
}

/// 200 from `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
}

/// Every error body: `{"error": code, "message": plain words}`, plus the details of a
/// `superseded` rejection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorCode,
    pub message: String,
    /// When the newer login happened (only with `superseded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_at: Option<String>,
    /// The newer login's User-Agent, if it sent one (only with `superseded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The newer login's IP address as the server saw it (only with `superseded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

/// The stable, machine-readable error codes.
///
/// Clients must treat a code they do not know ([`ErrorCode::Other`]) by its HTTP status;
/// for a 401 that means "signed out".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // 401: the tab's UID was refused.
    MissingUid,
    MalformedUid,
    UnknownUid,
    Superseded,
    LoggedOut,
    // 401 on login.
    InvalidCredentials,
    // 4xx: the request itself is wrong.
    InvalidInput,
    UsernameTaken,
    MalformedJson,
    BodyTooLarge,
    UnsupportedMediaType,
    NotFound,
    MethodNotAllowed,
    // 5xx: the server cannot serve right now; retry later.
    Unavailable,
    /// A code this build does not know (a newer server).
    #[serde(other)]
    Other,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MissingUid => "missing_uid",
            ErrorCode::MalformedUid => "malformed_uid",
            ErrorCode::UnknownUid => "unknown_uid",
            ErrorCode::Superseded => "superseded",
            ErrorCode::LoggedOut => "logged_out",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::UsernameTaken => "username_taken",
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip_through_their_wire_names() {
        for code in [
            ErrorCode::MissingUid,
            ErrorCode::MalformedUid,
            ErrorCode::UnknownUid,
            ErrorCode::Superseded,
            ErrorCode::LoggedOut,
            ErrorCode::InvalidCredentials,
            ErrorCode::InvalidInput,
            ErrorCode::UsernameTaken,
            ErrorCode::MalformedJson,
            ErrorCode::BodyTooLarge,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::Unavailable,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
    }

    #[test]
    fn an_unknown_code_parses_as_other() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":"idle_timeout","message":"x"}"#).unwrap();
        assert_eq!(body.error, ErrorCode::Other);
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let creds = Credentials {
            username: "ann".into(),
            password: "hunter22".into(),
        };
        assert!(!format!("{creds:?}").contains("hunter22"));
        let login = LoggedIn {
            uid: "6f1c1f44-3b1e-4b8e-9a53-2f6f1d1b9e10".into(),
            username: "ann".into(),
            issued_at: "2026-11-23T17:39:31.123Z".into(),
        };
        assert!(!format!("{login:?}").contains("6f1c1f44"));
    }
}
