//! The Leptos side of the server: server-rendered pages, and the wasm/CSS under `/pkg`.
//! None of it needs a tab UID; the enforcement core does not depend on it.
//!
//! Every page carries a Content-Security-Policy with a fresh nonce (Leptos generates one per
//! response and puts it on its own inline scripts): an injected script cannot run, and so
//! cannot read the tab's UID from memory.

use app::{App, shell};
use axum::Router;
use axum::http::{HeaderName, HeaderValue};
use leptos::config::LeptosOptions;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, ResponseOptions, generate_route_list};

pub fn router(options: LeptosOptions) -> Router {
    let routes = generate_route_list(App);
    Router::new()
        .leptos_routes(&options, routes, {
            let options = options.clone();
            move || page(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler(page))
        .with_state(options)
}

/// The document, with its policy set on the response being rendered.
fn page(options: LeptosOptions) -> impl IntoView {
    if let (Some(nonce), Some(response)) =
        (leptos::nonce::use_nonce(), use_context::<ResponseOptions>())
        && let Ok(policy) = HeaderValue::from_str(&content_security_policy(&nonce, &options))
    {
        response.insert_header(HeaderName::from_static("content-security-policy"), policy);
    }
    shell(options)
}

/// Only this site's own scripts (and the inline ones carrying this response's nonce), its own
/// wasm, styles and connections; nothing framed, no plugins, no `<base>`, forms to itself.
fn content_security_policy(nonce: &str, options: &LeptosOptions) -> String {
    // Debug builds (`cargo leptos watch`) also talk to the live-reload socket on its own port.
    let reload = if cfg!(debug_assertions) {
        format!(" ws://*:{}", options.reload_port)
    } else {
        String::new()
    };
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'{reload}; \
         object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )
}
