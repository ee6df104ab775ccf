use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

use crate::Hydrated;
use crate::api;
use crate::session::Session;

/// The top bar: the product's name, navigation, and who is signed in here.
#[component]
pub fn Header() -> impl IntoView {
    let session = Session::expect();
    let Hydrated(hydrated) = expect_context::<Hydrated>();
    let navigate = use_navigate();
    let (pending, set_pending) = signal(false);
    let (error, set_error) = signal(None::<String>);

    let sign_out = move |_| {
        let navigate = navigate.clone();
        set_pending.set(true);
        spawn_local(async move {
            let result = api::logout(session).await;
            set_pending.set(false);
            match result {
                Ok(()) | Err(api::ApiError::SignedOut) => {
                    set_error.set(None);
                    navigate("/login", Default::default());
                }
                Err(e) => set_error.set(Some(e.message())),
            }
        });
    };

    view! {
        <header class="topbar">
            <A href="/" attr:class="brand">"Solotab"</A>
            <nav aria-label="Main">
                <A href="/">"Home"</A>
                {move || session.active_username().map(|_| view! { <A href="/sessions">"Your sessions"</A> })}
                <A href="/about">"How it works"</A>
            </nav>
            {move || session.active_username().map(|username| view! {
                <div class="who">
                    <span class="signed-in-as">"Signed in as " <strong>{username}</strong></span>
                    <button
                        type="button"
                        class="secondary"
                        on:click=sign_out.clone()
                        disabled=move || !hydrated.get() || pending.get()
                    >
                        {move || if pending.get() { "Signing out…" } else { "Sign out" }}
                    </button>
                </div>
            })}
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </header>
    }
}
