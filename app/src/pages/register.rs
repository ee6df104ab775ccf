use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

use crate::Hydrated;
use crate::api;
use crate::contract::Credentials;
use crate::rules;
use crate::session::{Session, TabState};

/// `/register`. Creating an account does not sign in; the login page follows.
#[component]
pub fn RegisterPage() -> impl IntoView {
    let session = Session::expect();
    let Hydrated(hydrated) = expect_context::<Hydrated>();
    let navigate = use_navigate();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);

    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if pending.get_untracked() {
            return;
        }
        // The same rules the server applies, checked here first for a quicker answer.
        let name = username.get_untracked();
        let pass = password.get_untracked();
        if let Err(message) = rules::username(&name)
            .map(|_| ())
            .and_then(|()| rules::password(&pass))
        {
            error.set(Some(message));
            return;
        }
        pending.set(true);
        error.set(None);
        let navigate = navigate.clone();
        spawn_local(async move {
            let creds = Credentials {
                username: name,
                password: pass,
            };
            let result = api::register(session, &creds).await;
            let _ = pending.try_set(false);
            match result {
                Ok(done) => {
                    session.set(TabState::SignedOut {
                        notice: Some(format!(
                            "Account {} created. Sign in to continue.",
                            done.username
                        )),
                        username: Some(done.username),
                    });
                    navigate("/login", Default::default());
                }
                Err(e) => {
                    let _ = error.try_set(Some(e.message()));
                }
            }
        });
    };

    view! {
        <section class="card narrow" aria-labelledby="register-title">
            <h1 id="register-title">"Create an account"</h1>
            <form method="post" on:submit=on_submit novalidate>
                <label for="register-username">"Username"</label>
                <input id="register-username" name="username" autocomplete="username" aria-describedby="username-rules" required bind:value=username/>
                <p id="username-rules" class="hint">
                    {format!("{} to {} letters, digits, '_', '.' or '-'.", rules::USERNAME_MIN, rules::USERNAME_MAX)}
                </p>
                <label for="register-password">"Password"</label>
                <input id="register-password" name="password" type="password" autocomplete="new-password" aria-describedby="password-rules" required bind:value=password/>
                <p id="password-rules" class="hint">
                    {format!("{} to {} characters.", rules::PASSWORD_MIN, rules::PASSWORD_MAX)}
                </p>
                {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <button type="submit" disabled=move || !hydrated.get() || pending.get()>
                    {move || if pending.get() { "Creating…" } else { "Create account" }}
                </button>
            </form>
            <p>"Already have an account? " <A href="/login">"Sign in"</A></p>
        </section>
    }
}
