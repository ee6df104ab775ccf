//! `GET /api/openapi.json`: the OpenAPI 3.1 description of the JSON API, generated from the
//! handlers' `#[utoipa::path]` attributes and the contract's types.
//!
//! Errors every route can answer (a slow request, an unavailable store, a bad body) are added
//! here once rather than on every handler.

use std::sync::OnceLock;

use app::contract::{ErrorBody, ErrorCode, TAB_UID_HEADER};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

use super::{admin, channel, handlers};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Solotab",
        description = "One account, one active tab. Every error is `{\"error\": code, \"message\": words}` with a stable code; see ErrorCode.",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        handlers::register,
        handlers::login,
        handlers::take_back,
        handlers::device,
        handlers::use_here,
        handlers::me,
        handlers::premium,
        handlers::logout,
        handlers::change_password,
        handlers::sessions,
        admin::tabs,
        admin::sign_out,
        admin::policy,
        handlers::sign_out,
        handlers::healthz,
        channel::channel,
        document,
    ),
    components(schemas(ErrorBody, ErrorCode)),
    modifiers(&CommonErrors),
)]
pub struct ApiDoc;

/// The description, built once.
#[utoipa::path(get, path = "/api/openapi.json", tag = "service",
    responses((status = 200, description = "This document.", content_type = "application/json")))]
pub(super) async fn document() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .expect("the OpenAPI document serialises")
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json.clone(),
    )
        .into_response()
}

/// Adds the answers any route may give, and the refusal every protected route (one that takes
/// the tab UID header) may give.
struct CommonErrors;

impl utoipa::Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                let has_body = operation.request_body.is_some();
                let protected = operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|p| p.name == TAB_UID_HEADER);
                if protected {
                    add(
                        operation,
                        "401",
                        "The tab's UID was refused: `missing_uid`, `malformed_uid`, `unknown_uid`, `superseded` (with when, and by which browser and address), `logged_out`, `expired`.",
                    );
                }
                add(
                    operation,
                    "408",
                    "`request_timeout`: the request took too long to arrive.",
                );
                add(
                    operation,
                    "503",
                    "`store_unavailable`: the server cannot reach its database; nothing was changed. `unavailable`: the server cannot serve now (e.g. it is shutting down). Retry later.",
                );
                if has_body {
                    add(
                        operation,
                        "400",
                        "`malformed_json`: the body is not the JSON this route takes.",
                    );
                    add(
                        operation,
                        "413",
                        "`body_too_large`: the body is over 64 KiB.",
                    );
                    add(
                        operation,
                        "415",
                        "`unsupported_media_type`: the body is not `application/json`.",
                    );
                }
            }
        }
    }
}

/// Adds an error answer unless the route already describes that status.
fn add(operation: &mut Operation, status: &str, description: &str) {
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
                .into()
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_names_every_error_code() {
        let json = ApiDoc::openapi().to_json().unwrap();
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
        let codes = &doc["components"]["schemas"]["ErrorCode"];
        for code in ErrorCode::ALL {
            assert!(
                codes
                    .to_string()
                    .contains(&format!("\"{}\"", code.as_str())),
                "{} is missing from {codes}",
                code.as_str()
            );
        }
        for path in [
            "/api/register",
            "/api/login",
            "/api/device",
            "/api/use-here",
            "/api/me",
            "/api/premium",
            "/api/logout",
            "/api/channel",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} is not described");
        }
    }
}
