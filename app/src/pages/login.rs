use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::{A, Redirect};
use leptos_router::hooks::use_navigate;

use crate::Hydrated;
use crate::api;
use crate::contract::Credentials;
use crate::session::{Session, TabState};

/// `/login`. Also what a reload or a new tab lands on: the UID lives in memory only.
#[component]
pub fn LoginPage() -> impl IntoView {
    let session = Session::expect();
    move || match session.state() {
        TabState::Active { .. } => view! { <Redirect path="/"/> }.into_any(),
        TabState::SignedOut { notice, username } => {
            view! { <LoginForm notice prefill=username.unwrap_or_default()/> }.into_any()
        }
        TabState::Superseded { username, .. } => {
            view! { <LoginForm notice=None prefill=username/> }.into_any()
        }
    }
}

#[component]
fn LoginForm(notice: Option<String>, prefill: String) -> impl IntoView {
    let session = Session::expect();
    let Hydrated(hydrated) = expect_context::<Hydrated>();
    let navigate = use_navigate();
    let username = RwSignal::new(prefill);
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);

    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if pending.get_untracked() {
            return;
        }
        let creds = Credentials {
            username: username.get_untracked(),
            password: password.get_untracked(),
        };
        if creds.username.trim().is_empty() || creds.password.is_empty() {
            error.set(Some("Enter your username and password.".into()));
            return;
        }
        pending.set(true);
        error.set(None);
        let navigate = navigate.clone();
        spawn_local(async move {
            let result = api::login(session, &creds).await;
            let _ = pending.try_set(false);
            match result {
                Ok(()) => navigate("/", Default::default()),
                Err(e) => {
                    let _ = error.try_set(Some(e.message()));
                }
            }
        });
    };

    view! {
        <section class="card narrow" aria-labelledby="login-title">
            <h1 id="login-title">"Sign in"</h1>
            {notice.map(|n| view! { <p class="notice" role="status">{n}</p> })}
            <form method="post" on:submit=on_submit novalidate>
                <label for="login-username">"Username"</label>
                <input id="login-username" name="username" autocomplete="username" required bind:value=username/>
                <label for="login-password">"Password"</label>
                <input id="login-password" name="password" type="password" autocomplete="current-password" required bind:value=password/>
                {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <button type="submit" disabled=move || !hydrated.get() || pending.get()>
                    {move || if pending.get() { "Signing in…" } else { "Sign in" }}
                </button>
            </form>
            <p>"New here? " <A href="/register">"Create an account"</A></p>
        </section>
    }
}
