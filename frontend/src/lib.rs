//! The wasm entry point: hydrates the page the server rendered.

use leptos::prelude::*;
use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Asynchronous: a page whose code is loaded lazily (`cargo leptos build --split`) hydrates
    // once that code has arrived.
    wasm_bindgen_futures::spawn_local(async {
        // Erased to one type: the future's layout stays shallow.
        let app = || view! { <app::App/> }.into_any();
        leptos::mount::hydrate_from_async(leptos::tachys::dom::body(), app)
            .await
            .forget();
        // Reached only once hydration has succeeded: tests and scripts wait for this attribute.
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
}
