use leptos::prelude::*;

use crate::session::Session;

/// Shown while the server cannot be reached. The tab is still signed in; pages retry.
#[component]
pub fn ConnectionBanner() -> impl IntoView {
    let session = Session::expect();
    view! {
        <Show when=move || session.unreachable() && session.active_username().is_some()>
            <p class="banner offline" role="status">
                "Cannot reach the server. You are still signed in in this tab; retrying…"
            </p>
        </Show>
    }
}
