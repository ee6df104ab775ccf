//! The public HTTP contract, as types both ends share.
//!
//! The server serialises these and the browser deserialises them, so the two agree by
//! construction; the push channel's and the tabs' messages, which the browser reads in two
//! steps (their `type`, then the variant), are read back by the tests below. Other clients
//! rely on the JSON shapes; the README documents them.

use serde::{Deserialize, Deserializer, Serialize, de};

/// The header that carries a tab's UID on every protected request.
pub const TAB_UID_HEADER: &str = "x-tab-uid";

/// Largest request body the API accepts, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The path of the push channel (a WebSocket).
pub const CHANNEL_PATH: &str = "/api/channel";

/// The HttpOnly cookie that lets this browser "Use here" without the password.
pub const DEVICE_COOKIE: &str = "solotab_device";

/// How long a channel may stay silent before its hello, in seconds.
pub const HELLO_TIMEOUT_SECS: u64 = 5;

/// Close codes the channel uses besides the standard ones.
pub mod close_code {
    /// Normal closure after an `ended` message: the tab is no longer active; do not reconnect.
    pub const ENDED: u16 = 1000;
    /// Policy violation: no or bad hello, too many channels for one UID, or silent too long.
    pub const POLICY: u16 = 1008;
    /// The server is restarting: reconnect soon, the tab stays active.
    pub const RESTARTING: u16 = 1012;
    /// The server cannot reach its store: reconnect later, the tab stays active.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// `POST /api/register` and `POST /api/login`.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// Login only: sign out the account's active tab, where the server's policy would
    /// otherwise refuse this login with 409 `account_in_use` (deny-new).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub takeover: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("takeover", &self.takeover)
            .finish()
    }
}

/// `POST /api/not-me` ("That wasn't me"): the owner of a superseded tab takes the account
/// back with its password and a new one.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakeBack {
    pub username: String,
    /// The account's password now (the one whoever took over also knew).
    pub password: String,
    /// The password from now on: whoever took over must not be able to sign in again.
    pub new_password: String,
}

impl std::fmt::Debug for TakeBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TakeBack")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `POST /api/password`: the account's current password, and the new one.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordChange {
    pub current: String,
    pub new: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange { current: <redacted>, new: <redacted> }")
    }
}

/// 201 from `POST /api/register`.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub username: String,
}

/// 200 from `POST /api/login`. `uid` is this tab's credential: keep it in memory only.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
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

/// 200 from `GET /api/device`: this browser's device cookie is valid for `username`.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub username: String,
    /// Whether the account has an active tab now (somewhere: this browser or another).
    pub active_elsewhere: bool,
}

/// `POST /api/use-here`: a JSON object (a JSON body cannot be sent cross-site without a
/// CORS preflight), usually empty. The answer is a [`LoggedIn`].
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UseHere {
    /// Sign out the account's active tab, where the server's policy would otherwise refuse
    /// with 409 `account_in_use` (deny-new).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub takeover: bool,
}

/// What a tab sends on the push channel: its hello, first and only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelRequest {
    Hello { uid: String },
}

impl std::fmt::Debug for ChannelRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelRequest::Hello { .. } => f.write_str("Hello { uid: <redacted> }"),
        }
    }
}

/// What the server sends on the push channel: `{"type": <tag>, <the variant's fields>}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelEvent {
    /// The hello's UID is active; the channel stays open until that changes.
    Active(ChannelActive),
    /// The UID is not (or no longer) active, with the body a 401 would carry. The server
    /// closes the channel after it.
    Ended(ErrorBody),
}

impl ChannelEvent {
    pub const ACTIVE: &str = "active";
    pub const ENDED: &str = "ended";

    /// The event whose `type` is `tag`, its fields read from the whole message (`type` is
    /// ignored there). Read in two steps, not derived: serde's reader for an internally
    /// tagged enum first copies every message into a generic tree, code the browser's wasm
    /// does without.
    pub fn from_tagged<'de, D: Deserializer<'de>>(tag: &str, message: D) -> Result<Self, D::Error> {
        match tag {
            Self::ACTIVE => ChannelActive::deserialize(message).map(Self::Active),
            Self::ENDED => ErrorBody::deserialize(message).map(Self::Ended),
            _ => Err(de::Error::unknown_variant(
                tag,
                &[Self::ACTIVE, Self::ENDED],
            )),
        }
    }
}

/// The fields of [`ChannelEvent::Active`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelActive {
    pub issued_at: String,
}

/// What one tab tells the other tabs of its browser (`BroadcastChannel`). Never a UID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TabMessage {
    Taken(Taken),
}

impl TabMessage {
    pub const TAKEN: &str = "taken";

    /// Like [`ChannelEvent::from_tagged`].
    pub fn from_tagged<'de, D: Deserializer<'de>>(tag: &str, message: D) -> Result<Self, D::Error> {
        match tag {
            Self::TAKEN => Taken::deserialize(message).map(Self::Taken),
            _ => Err(de::Error::unknown_variant(tag, &[Self::TAKEN])),
        }
    }
}

/// The fields of [`TabMessage::Taken`]: this tab signed in (login or "Use here") at `at` (RFC
/// 3339), so older tabs are superseded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taken {
    pub at: String,
}

/// 200 from `GET /api/me`.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub username: String,
    pub issued_at: String,
}

/// 200 from `GET /api/sessions`: the account's active tabs and what happened to it lately.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSessions {
    /// Every active tab of the account, this one included, oldest sign-in first.
    pub tabs: Vec<TabInfo>,
    /// The newest events (at most 50), newest first.
    pub events: Vec<AccountEventInfo>,
    /// The browsers that may "Use here" (signed in with the password), the latest sign-in
    /// first: as many as the account's policy allows tabs.
    #[serde(default)]
    pub browsers: Vec<BrowserInfo>,
    /// Whether the account may use the admin pages.
    #[serde(default)]
    pub admin: bool,
}

/// 200 from `GET /api/admin/tabs?search=&page=`: one page of every account's active tabs.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminTabs {
    pub tabs: Vec<AdminTab>,
    /// How many tabs match in all.
    pub total: u64,
    /// This page (from 1) and how many there are (at least 1).
    pub page: u32,
    pub pages: u32,
}

/// One active tab on the admin page.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminTab {
    pub username: String,
    pub signed_in_at: String,
    pub last_seen: String,
    pub user_agent: Option<String>,
    pub ip: String,
    /// As in [`TabInfo::timed_out_at`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out_at: Option<String>,
}

/// `POST /api/admin/sign-out`: every tab of this account is signed out.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminSignOut {
    pub username: String,
}

/// `POST /api/admin/policy`: an account's own policy (`latest-wins`, `deny-new`,
/// `max-tabs` with `max_tabs`), or `default` for the server's.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminPolicy {
    pub username: String,
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tabs: Option<u16>,
}

/// One active tab, as its account's owner sees it.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TabInfo {
    /// Names the tab in `POST /api/sessions/sign-out` (not a credential).
    pub id: String,
    /// Whether it is the tab that asked.
    pub this_tab: bool,
    pub signed_in_at: String,
    /// Its last request, as the server recorded it (at most a tenth of `--idle-timeout`
    /// late; without an idle timeout, as this server saw it or its sign-in).
    pub last_seen: String,
    pub user_agent: Option<String>,
    pub ip: String,
    /// When it timed out (`--absolute-timeout` or `--idle-timeout`), if it has: it counts
    /// as signed in until something ends it, but none of its requests is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out_at: Option<String>,
}

/// A browser signed in to the account (it holds a device cookie, so it may "Use here").
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserInfo {
    /// Names the browser in `POST /api/sessions/sign-out` (not a credential).
    pub id: String,
    /// Whether it is the browser that asked.
    pub this_browser: bool,
    /// Its password login.
    pub signed_in_at: String,
    /// Its latest sign-in: that login, or its latest "Use here".
    pub last_sign_in: String,
    /// When it must sign in with the password again.
    pub expires_at: String,
    /// As at its login; absent for browsers signed in before the server kept them.
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// One event of the account's history.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEventInfo {
    pub at: String,
    /// `login`, `takeover`, `use_here`, `logout`, `expired`, `rejected_stale`,
    /// `password_changed`, `revoked`, `taken_back` (more may come: show an unknown one as
    /// it is).
    pub kind: String,
    /// Where the request that caused it came from, if one did.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// `POST /api/sessions/sign-out`: `{"tab": id}` signs one other tab out; `{"browser": id}`
/// signs another browser out (its "Use here" ends, and so do the tabs it signed in);
/// `{"everywhere_else": true}` signs out every other tab and ends every other browser's
/// "Use here".
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignOut {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tab: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub everywhere_else: bool,
}

/// 200 from `POST /api/sessions/sign-out`.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOut {
    /// How many tabs were signed out (each is told `revoked` at once).
    pub tabs: usize,
}

/// 200 from `GET /api/premium`: the demo's protected content.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Premium {
    pub title: String,
    pub body: String,
    pub served_at: String,
}

/// 200 from `GET /healthz`.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
}

/// Every error body: `{"error": code, "message": plain words}`, plus the details of a
/// `superseded` rejection.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
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
    /// Seconds until trying again may succeed (only with `too_many_attempts`; also sent as
    /// the `Retry-After` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// When the account's active tab signed in (only with `account_in_use`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_since: Option<String>,
    /// How long without a request ended the tab (only with `expired`, for the idle
    /// timeout; absent when its lifetime ran out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_secs: Option<u64>,
}

/// The stable, machine-readable error codes.
///
/// Clients must treat a code they do not know ([`ErrorCode::Other`]) by its HTTP status;
/// for a 401 that means "signed out".
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
    // 401 on `GET /api/device` and `POST /api/use-here`: no valid device cookie.
    NoDevice,
    // 403: the request's Origin is not this site's.
    CrossSite,
    // 429: too many failed logins (or registrations) from this client or for this account.
    TooManyAttempts,
    /// 401: the tab's sign-in reached the end of its lifetime (`--absolute-timeout`), or
    /// went unused too long (`--idle-timeout`; then `idle_secs` says how long).
    Expired,
    /// 401: the tab was signed out from another tab of the account ("Your sessions", a
    /// password change, "That wasn't me").
    Revoked,
    /// 403 on `POST /api/password`: the current password given is not the account's.
    WrongPassword,
    /// 403 on `/api/admin/*`: the account is not an administrator.
    NotAdmin,
    /// 409 on a login or "Use here" under the deny-new policy: the account has an active tab
    /// (since `active_since`); send it again with `"takeover": true` to sign that tab out.
    AccountInUse,
    // 4xx: the request itself is wrong.
    InvalidInput,
    UsernameTaken,
    MalformedJson,
    BodyTooLarge,
    UnsupportedMediaType,
    NotFound,
    MethodNotAllowed,
    /// 426: `GET /api/channel` without a WebSocket upgrade.
    UpgradeRequired,
    /// 408: the request (its body included) took too long to arrive.
    RequestTimeout,
    // 5xx: the server cannot serve right now; retry later.
    Unavailable,
    /// 503: the server cannot reach its store (database); nothing was changed.
    StoreUnavailable,
    /// A code this build does not know (a newer server).
    Other,
}

/// Read by name through [`ErrorCode::as_str`]; any other name is [`ErrorCode::Other`]. By
/// hand because the derived reader, with a case for each name, was 9 KB of the browser's
/// wasm (before wasm-opt), and this one is a few hundred bytes.
impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(ErrorCode::ALL
            .into_iter()
            .find(|code| code.as_str() == name)
            .unwrap_or(ErrorCode::Other))
    }
}

impl ErrorCode {
    /// Every code this build sends ([`ErrorCode::Other`] is only ever received).
    pub const ALL: [ErrorCode; 25] = [
        ErrorCode::MissingUid,
        ErrorCode::MalformedUid,
        ErrorCode::UnknownUid,
        ErrorCode::Superseded,
        ErrorCode::LoggedOut,
        ErrorCode::InvalidCredentials,
        ErrorCode::NoDevice,
        ErrorCode::CrossSite,
        ErrorCode::TooManyAttempts,
        ErrorCode::AccountInUse,
        ErrorCode::Expired,
        ErrorCode::Revoked,
        ErrorCode::WrongPassword,
        ErrorCode::NotAdmin,
        ErrorCode::InvalidInput,
        ErrorCode::UsernameTaken,
        ErrorCode::MalformedJson,
        ErrorCode::BodyTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::UpgradeRequired,
        ErrorCode::RequestTimeout,
        ErrorCode::Unavailable,
        ErrorCode::StoreUnavailable,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MissingUid => "missing_uid",
            ErrorCode::MalformedUid => "malformed_uid",
            ErrorCode::UnknownUid => "unknown_uid",
            ErrorCode::Superseded => "superseded",
            ErrorCode::LoggedOut => "logged_out",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::NoDevice => "no_device",
            ErrorCode::CrossSite => "cross_site",
            ErrorCode::TooManyAttempts => "too_many_attempts",
            ErrorCode::AccountInUse => "account_in_use",
            ErrorCode::WrongPassword => "wrong_password",
            ErrorCode::NotAdmin => "not_admin",
            ErrorCode::Expired => "expired",
            ErrorCode::Revoked => "revoked",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::UsernameTaken => "username_taken",
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::UpgradeRequired => "upgrade_required",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn error_codes_round_trip_through_their_wire_names() {
        for code in ErrorCode::ALL {
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
            takeover: false,
        };
        assert!(!format!("{creds:?}").contains("hunter22"));
        let login = LoggedIn {
            uid: "6f1c1f44-3b1e-4b8e-9a53-2f6f1d1b9e10".into(),
            username: "ann".into(),
            issued_at: "2026-11-23T17:39:31.123Z".into(),
        };
        assert!(!format!("{login:?}").contains("6f1c1f44"));
        let hello = ChannelRequest::Hello {
            uid: "6f1c1f44-3b1e-4b8e-9a53-2f6f1d1b9e10".into(),
        };
        assert!(!format!("{hello:?}").contains("6f1c1f44"));
    }

    #[test]
    fn channel_messages_have_the_documented_shapes() {
        let hello: ChannelRequest =
            serde_json::from_str(r#"{"type":"hello","uid":"abc"}"#).unwrap();
        assert_eq!(hello, ChannelRequest::Hello { uid: "abc".into() });
        let active = ChannelEvent::Active(ChannelActive {
            issued_at: "2026-11-23T17:39:31.123Z".into(),
        });
        assert_eq!(
            serde_json::to_value(&active).unwrap(),
            serde_json::json!({"type":"active","issued_at":"2026-11-23T17:39:31.123Z"})
        );
        let ended = ChannelEvent::Ended(ErrorBody {
            error: ErrorCode::Superseded,
            message: "m".into(),
            superseded_at: Some("t".into()),
            user_agent: None,
            ip: Some("127.0.0.1".into()),
            retry_after_secs: None,
            active_since: None,
            idle_secs: None,
        });
        assert_eq!(
            serde_json::to_value(&ended).unwrap(),
            serde_json::json!({"type":"ended","error":"superseded","message":"m",
                               "superseded_at":"t","ip":"127.0.0.1"})
        );
        let taken = TabMessage::Taken(Taken { at: "t".into() });
        assert_eq!(
            serde_json::to_string(&taken).unwrap(),
            r#"{"type":"taken","at":"t"}"#
        );
    }

    /// Serialized, then read back the browser's way: the tag first, then the fields.
    fn read_back<T: Serialize>(
        message: &T,
        from_tagged: fn(&str, Value) -> Result<T, serde_json::Error>,
    ) -> T {
        let value = serde_json::to_value(message).unwrap();
        let tag = value["type"].as_str().unwrap().to_owned();
        from_tagged(&tag, value).unwrap()
    }

    #[test]
    fn channel_messages_read_back_by_their_tags() {
        let events = [
            ChannelEvent::Active(ChannelActive {
                issued_at: "2026-11-23T17:39:31.123Z".into(),
            }),
            ChannelEvent::Ended(ErrorBody {
                error: ErrorCode::Expired,
                message: "m".into(),
                superseded_at: Some("t".into()),
                user_agent: Some("ua".into()),
                ip: Some("::1".into()),
                retry_after_secs: Some(3),
                active_since: Some("s".into()),
                idle_secs: Some(900),
            }),
        ];
        for event in events {
            assert_eq!(read_back(&event, ChannelEvent::from_tagged), event);
        }
        let taken = TabMessage::Taken(Taken { at: "t".into() });
        assert_eq!(read_back(&taken, TabMessage::from_tagged), taken);
        let unknown = serde_json::json!({"type": "paused", "at": "t"});
        assert!(ChannelEvent::from_tagged("paused", unknown.clone()).is_err());
        assert!(TabMessage::from_tagged("paused", unknown).is_err());
    }
}
