use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, ApiError};
use crate::components::{ChangePassword, active_tab_only};
use crate::contract::Premium;
use crate::display::local_time;
use crate::session::Session;

/// How long to wait before trying again while the server is unreachable.
const RETRY_AFTER: Duration = Duration::from_secs(3);

/// `/`: the protected home page. A tab without a UID is sent to the login page; a
/// superseded tab is told what happened, and its dashboard (premium content included) is
/// removed from the page, not hidden.
#[component]
pub fn HomePage() -> impl IntoView {
    active_tab_only(|username, issued_at| view! { <Dashboard username issued_at/> })
}

/// What the active tab sees: who is signed in since when, and the premium content.
#[component]
fn Dashboard(username: String, issued_at: String) -> impl IntoView {
    let session = Session::expect();
    let account = username.clone();
    let premium = RwSignal::new(None::<Premium>);
    let error = RwSignal::new(None::<String>);
    let loading = RwSignal::new(false);
    // Bumped to (re)load the premium content: by Refresh, and by the retry timer.
    let attempt = RwSignal::new(0u32);
    // The pending retry, if any: one at most, and none once the page is gone.
    let retry = StoredValue::new(None::<TimeoutHandle>);
    let cancel_retry = move || {
        if let Some(handle) = retry.try_update_value(Option::take).flatten() {
            handle.clear();
        }
    };
    on_cleanup(cancel_retry);

    Effect::new(move |_| {
        attempt.track();
        cancel_retry();
        loading.set(true);
        spawn_local(async move {
            let result = api::premium(session).await;
            // The page may be gone by now (signed out, navigated away): try_ setters.
            let _ = loading.try_set(false);
            match result {
                Ok(content) => {
                    let _ = premium.try_set(Some(content));
                    let _ = error.try_set(None);
                }
                Err(ApiError::Unreachable) => {
                    let _ = error.try_set(Some(ApiError::Unreachable.message()));
                    let handle = set_timeout_with_handle(
                        move || {
                            let _ = attempt.try_update(|n| *n += 1);
                        },
                        RETRY_AFTER,
                    );
                    if let Ok(handle) = handle {
                        let _ = retry.try_set_value(Some(handle));
                    }
                }
                // The session now says superseded or signed out, and the page follows it.
                Err(ApiError::SignedOut) => {}
                Err(other) => {
                    let _ = error.try_set(Some(other.message()));
                }
            }
        });
    });

    view! {
        <section class="card" aria-labelledby="welcome-title">
            <h1 id="welcome-title">"Welcome, " {username.clone()}</h1>
            <p class="since">
                "You are signed in as " <strong>{username}</strong> " in this tab since "
                <time datetime=issued_at.clone()>{local_time(&issued_at)}</time> "."
            </p>
            <p class="hint">
                "Signing in anywhere else, even in another tab of this browser, will stop this tab."
            </p>
        </section>
        <section class="card premium" aria-labelledby="premium-title" aria-busy=move || loading.get().to_string()>
            <h2 id="premium-title">
                {move || premium.get().map_or_else(|| "Premium content".to_owned(), |p| p.title)}
            </h2>
            {move || match premium.get() {
                Some(p) => view! {
                    <p class="premium-body">{p.body}</p>
                    <p class="served-at">"Served at " <time datetime=p.served_at.clone()>{local_time(&p.served_at)}</time></p>
                }.into_any(),
                None => view! { <p class="premium-body">"Loading…"</p> }.into_any(),
            }}
            {move || error.get().map(|e| view! { <p class="error" role="status">{e}</p> })}
            <button
                type="button"
                on:click=move |_| attempt.update(|n| *n += 1)
                disabled=move || loading.get()
            >
                "Refresh"
            </button>
        </section>
        <ChangePassword username=account/>
    }
}
