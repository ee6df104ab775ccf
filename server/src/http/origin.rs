//! Same-origin check for what a cross-site page must never trigger: opening the push
//! channel (browsers do not apply CORS to WebSockets) and "Use here" (it rides on a cookie).

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{HOST, ORIGIN};
use axum::http::request::Parts;

use super::ApiError;

/// Origins allowed besides the server's own (the scheme and the request's `Host`).
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins(Arc<[String]>);

impl AllowedOrigins {
    pub fn new(origins: impl IntoIterator<Item = String>) -> Self {
        Self(
            origins
                .into_iter()
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
        )
    }

    /// Whether a request with this `Origin` and `Host` comes from this site.
    fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let own = host.is_some_and(|host| {
            origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
        });
        own || self.0.iter().any(|allowed| allowed == origin)
    }
}

/// A request whose `Origin` is this site. Anything else, a missing `Origin` included, is
/// refused with 403 `cross_site` before the handler runs.
#[derive(Debug, Clone, Copy)]
pub struct SameOrigin;

impl<S> FromRequestParts<S> for SameOrigin
where
    AllowedOrigins: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let origin = header(ORIGIN).ok_or(ApiError::CrossSite)?;
        if !AllowedOrigins::from_ref(state).allows(origin, header(HOST)) {
            if super::refusal_log::first_of_its_kind("cross_site") {
                tracing::info!(origin, "cross-site request refused");
            }
            return Err(ApiError::CrossSite);
        }
        Ok(SameOrigin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_origin_and_listed_ones_pass_and_nothing_else() {
        let none = AllowedOrigins::default();
        let host = Some("127.0.0.1:3000");
        assert!(none.allows("http://127.0.0.1:3000", host));
        assert!(none.allows("https://127.0.0.1:3000", host));
        for foreign in [
            "http://127.0.0.1:3001",
            "http://evil.example",
            "http://127.0.0.1:3000.evil.example",
            "null",
            "127.0.0.1:3000",
            "",
        ] {
            assert!(!none.allows(foreign, host), "{foreign}");
        }
        assert!(
            !none.allows("http://127.0.0.1:3000", None),
            "no Host, no own origin"
        );

        let listed = AllowedOrigins::new(["https://app.example/".to_owned(), " ".to_owned()]);
        assert!(listed.allows("https://app.example", host));
        assert!(!listed.allows("http://app.example", host));
    }
}
