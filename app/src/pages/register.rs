use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

use crate::api;
use crate::components::CredentialsForm;
use crate::contract::Credentials;
use crate::session::Session;

/// `/register`. Creating an account does not sign in; the login page follows.
#[component]
pub fn RegisterPage() -> impl IntoView {
    let session = Session::expect();
    let navigate = use_navigate();
    let submit = move |creds: Credentials| {
        let navigate = navigate.clone();
        async move {
            let done = api::register(session, &creds).await?;
            session.registered(done.username);
            navigate("/login", Default::default());
            Ok(())
        }
    };
    view! {
        <section class="card narrow" aria-labelledby="register-title">
            <h1 id="register-title">"Create an account"</h1>
            <CredentialsForm
                id="register"
                submit_label="Create account"
                pending_label="Creating…"
                new_account=true
                submit
            />
            <p>"Already have an account? " <A href="/login">"Sign in"</A></p>
        </section>
    }
}
