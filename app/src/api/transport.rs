//! The browser's I/O: sending one request (`fetch`), and JSON read and written by serde
//! through the browser's own `JSON.parse` and `JSON.stringify` (serde_json's parser and
//! writer, compiled to wasm, were about 4 % of what every page downloads). The server never
//! calls these (pages render signed out), so there they only fail.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Sends `method path` with the UID header (if any) and a JSON body (if any); returns the
/// status and body text, or `Err` when no answer came.
#[cfg(feature = "hydrate")]
pub(super) async fn fetch(
    method: &'static str,
    path: &str,
    uid: Option<&str>,
    body: Option<String>,
) -> Result<(u16, String), ()> {
    use gloo_net::http::Request;

    use crate::contract::TAB_UID_HEADER;

    let request = match method {
        "POST" => Request::post(path),
        _ => Request::get(path),
    };
    let mut request = request.header("accept", "application/json");
    if let Some(uid) = uid {
        request = request.header(TAB_UID_HEADER, uid);
    }
    let request = match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(body),
        None => request.build(),
    }
    .map_err(|_| ())?;
    let response = request.send().await.map_err(|_| ())?;
    let status = response.status();
    let text = response.text().await.map_err(|_| ())?;
    Ok((status, text))
}

#[cfg(not(feature = "hydrate"))]
pub(super) async fn fetch(
    _method: &'static str,
    _path: &str,
    _uid: Option<&str>,
    _body: Option<String>,
) -> Result<(u16, String), ()> {
    Err(())
}

/// `text` read as a `T`.
#[cfg(feature = "hydrate")]
pub(super) fn from_json<T: DeserializeOwned>(text: &str) -> Option<T> {
    let value = js_sys::JSON::parse(text).ok()?;
    serde_wasm_bindgen::from_value(value).ok()
}

/// An internally tagged message (`{"type": ...}`), read by `from_tagged` (as
/// [`crate::contract::ChannelEvent::from_tagged`]) from its tag and the whole message.
#[cfg(feature = "hydrate")]
pub(super) fn from_tagged_json<T>(
    text: &str,
    from_tagged: fn(&str, serde_wasm_bindgen::Deserializer) -> Result<T, serde_wasm_bindgen::Error>,
) -> Option<T> {
    let value = js_sys::JSON::parse(text).ok()?;
    let tag = js_sys::Reflect::get(&value, &"type".into())
        .ok()?
        .as_string()?;
    from_tagged(&tag, value.into()).ok()
}

/// `value` as JSON text (a `None` as `null`).
#[cfg(feature = "hydrate")]
pub(super) fn to_json<T: Serialize>(value: &T) -> Option<String> {
    let value = value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .ok()?;
    js_sys::JSON::stringify(&value).ok()?.as_string()
}

#[cfg(not(feature = "hydrate"))]
pub(super) fn from_json<T: DeserializeOwned>(_text: &str) -> Option<T> {
    None
}

#[cfg(not(feature = "hydrate"))]
pub(super) fn to_json<T: Serialize>(_value: &T) -> Option<String> {
    None
}
