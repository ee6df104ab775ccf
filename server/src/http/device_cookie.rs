//! The device cookie: carries a [`DeviceToken`] to `/api` and nowhere else.
//!
//! `HttpOnly` (no script reads it, the app's included), `SameSite=Strict` (no cross-site
//! request carries it), `Path=/api`, `Secure` when the page is https, and an expiry.

use std::convert::Infallible;
use std::time::Duration;

use app::contract::DEVICE_COOKIE;
use axum::extract::FromRequestParts;
use axum::http::header::COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponseParts, ResponseParts};
use cookie::{Cookie, SameSite};

use crate::device::DeviceToken;

/// The request's device token, if it carried a well-formed one, and whether the page was
/// served over https (then the cookie is set `Secure`; see [`served_over_https`]).
#[derive(Debug, Clone)]
pub struct DeviceCookie {
    pub token: Option<DeviceToken>,
    pub https: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for DeviceCookie {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|cookie| cookie.name() == DEVICE_COOKIE)
            .and_then(|cookie| DeviceToken::parse(cookie.value()));
        Ok(DeviceCookie {
            token,
            https: served_over_https(&parts.headers),
        })
    }
}

/// Whether the page a request comes from was served over https: its `Origin` says so, or
/// the proxy in front does (`X-Forwarded-Proto`). Only ever used to add protections (the
/// cookie's `Secure`, HSTS), so a forged header costs the forger nothing but their own cookie.
pub fn served_over_https(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header(header::ORIGIN.as_str()).is_some_and(|o| o.starts_with("https://"))
        || header("x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` for the device cookie: to set it, or to clear it.
#[derive(Debug)]
pub struct SetDeviceCookie(HeaderValue);

impl SetDeviceCookie {
    pub fn set(token: &DeviceToken, lifetime: Duration, https: bool) -> Self {
        let max_age =
            cookie::time::Duration::seconds(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX));
        Self::build(token.expose(), max_age, https)
    }

    pub fn clear(https: bool) -> Self {
        Self::build(String::new(), cookie::time::Duration::ZERO, https)
    }

    fn build(value: String, max_age: cookie::time::Duration, https: bool) -> Self {
        let cookie = Cookie::build((DEVICE_COOKIE, value))
            .http_only(true)
            .same_site(SameSite::Strict)
            .path("/api")
            .secure(https)
            .max_age(max_age)
            .build();
        // Hex digits and fixed attributes only: always a valid header value.
        Self(HeaderValue::from_str(&cookie.to_string()).expect("cookie is ASCII"))
    }
}

impl IntoResponseParts for SetDeviceCookie {
    type Error = Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        res.headers_mut().append(header::SET_COOKIE, self.0);
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_has_every_attribute_the_contract_names() {
        let token = DeviceToken::parse(&"ab".repeat(32)).unwrap();
        let SetDeviceCookie(set) = SetDeviceCookie::set(&token, Duration::from_secs(60), false);
        let set = set.to_str().unwrap();
        for part in [
            &format!("{DEVICE_COOKIE}={}", "ab".repeat(32)),
            "HttpOnly",
            "SameSite=Strict",
            "Path=/api",
            "Max-Age=60",
        ] {
            assert!(set.contains(part), "{set} lacks {part}");
        }
        assert!(!set.contains("Secure"));
        let SetDeviceCookie(secure) = SetDeviceCookie::set(&token, Duration::from_secs(60), true);
        assert!(secure.to_str().unwrap().contains("Secure"));
        let SetDeviceCookie(cleared) = SetDeviceCookie::clear(false);
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
    }
}
