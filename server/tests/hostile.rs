//! Random bodies, content types and UID headers: every answer is a 4xx (or a 2xx) with a JSON
//! error code, never a 5xx, a panic or a dropped connection.

mod common;

use common::spawn_app;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderValue};

const ENDPOINTS: [(&str, &str); 9] = [
    ("POST", "/api/register"),
    ("POST", "/api/login"),
    ("GET", "/api/me"),
    ("GET", "/api/premium"),
    ("POST", "/api/logout"),
    ("GET", "/api/device"),
    ("POST", "/api/use-here"),
    ("GET", "/api/channel"),
    ("PATCH", "/api/anything"),
];

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..400),
        // Near-miss JSON: the right shape with hostile values.
        (".{0,80}", ".{0,200}").prop_map(|(u, p)| {
            serde_json::json!({"username": u, "password": p})
                .to_string()
                .into_bytes()
        }),
        Just(br#"{"username":null,"password":["x"]}"#.to_vec()),
        Just(b"{\"username\":\"ann\",\"password\":\"\\ud800\"}".to_vec()),
    ]
}

#[test]
fn hostile_input_never_gets_a_server_error() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(async {
        let app = spawn_app().await;
        app.register("victim").await;
        app
    });
    let input = (
        0..ENDPOINTS.len(),
        body(),
        prop_oneof![
            Just(Some("application/json")),
            Just(None),
            Just(Some("text/plain"))
        ],
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(any::<u8>(), 0..80),
        any::<bool>(),
    );
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    runner
        .run(
            &input,
            |(endpoint, body, content_type, uid, cookie, same_origin)| {
                let (method, path) = ENDPOINTS[endpoint];
                let mut request = app
                    .client
                    .request(
                        Method::from_bytes(method.as_bytes()).unwrap(),
                        app.url(path),
                    )
                    .body(body);
                if let Some(content_type) = content_type {
                    request = request.header(CONTENT_TYPE, content_type);
                }
                if let Ok(uid) = HeaderValue::from_bytes(&uid) {
                    request = request.header("x-tab-uid", uid);
                }
                let cookie = [b"solotab_device=".as_slice(), &cookie].concat();
                if let Ok(cookie) = HeaderValue::from_bytes(&cookie) {
                    request = request.header("cookie", cookie);
                }
                if same_origin {
                    request = request.header("origin", app.origin());
                }
                // `send` asserts: no 5xx, JSON unless 204, Cache-Control: no-store.
                let reply = runtime.block_on(app.send(request));
                if !reply.status.is_success() {
                    prop_assert!(reply.body["error"].is_string(), "{:?}", reply.body);
                }
                Ok(())
            },
        )
        .unwrap();
}
