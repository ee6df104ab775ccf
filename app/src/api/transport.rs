//! Sending one request: `fetch` in the browser. The server never calls it (pages render
//! signed out), so there it only says the server cannot be reached.

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
