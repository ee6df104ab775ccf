use leptos::prelude::*;
use leptos_router::components::{A, Redirect};
use leptos_router::hooks::use_navigate;

use crate::api;
use crate::components::CredentialsForm;
use crate::contract::Credentials;
use crate::session::{Session, TabState};

/// `/login`. Also what a reload or a new tab lands on: the UID lives in memory only.
#[component]
pub fn LoginPage() -> impl IntoView {
    let session = Session::expect();
    move || match session.state() {
        TabState::Active { .. } => view! { <Redirect path="/"/> }.into_any(),
        TabState::SignedOut { notice, username } => {
            view! { <LoginCard notice prefill=username.unwrap_or_default()/> }.into_any()
        }
        TabState::Superseded { username, .. } => {
            view! { <LoginCard notice=None prefill=username/> }.into_any()
        }
    }
}

#[component]
fn LoginCard(notice: Option<String>, prefill: String) -> impl IntoView {
    let session = Session::expect();
    let navigate = use_navigate();
    let submit = move |creds: Credentials| {
        let navigate = navigate.clone();
        async move {
            api::login(session, &creds).await?;
            navigate("/", Default::default());
            Ok(())
        }
    };
    view! {
        <section class="card narrow" aria-labelledby="login-title">
            <h1 id="login-title">"Sign in"</h1>
            {notice.map(|n| view! { <p class="notice" role="status">{n}</p> })}
            <CredentialsForm id="login" submit_label="Sign in" pending_label="Signing in…" prefill submit/>
            <p>"New here? " <A href="/register">"Create an account"</A></p>
        </section>
    }
}
