use std::future::Future;

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::Hydrated;
use crate::api::ApiError;
use crate::components::TakeoverButton;
use crate::contract::{Credentials, ErrorCode};
use crate::rules;

/// The username + password form that login and registration share.
///
/// The submit button stays disabled until the page has hydrated, so the browser never
/// submits the form by itself (a GET would put the password in the URL).
#[component]
pub fn CredentialsForm<F, Fut>(
    /// Prefix of the element ids ("login", "register").
    id: &'static str,
    submit_label: &'static str,
    pending_label: &'static str,
    /// Registration: the password is a new one, and the rules are shown under the fields.
    #[prop(optional)]
    new_account: bool,
    #[prop(optional)] prefill: String,
    /// False while the page still has to decide what to offer (the submit waits for it).
    #[prop(optional, into)]
    ready: Option<Signal<bool>>,
    /// Sends the credentials; on success the caller navigates away.
    submit: F,
) -> impl IntoView
where
    F: Fn(Credentials) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), ApiError>> + 'static,
{
    let Hydrated(hydrated) = expect_context::<Hydrated>();
    let username = RwSignal::new(prefill);
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    // The server refused because another tab is active (deny-new): offer to end it.
    let in_use = RwSignal::new(false);
    let pending = RwSignal::new(false);

    // Sends the form; `takeover` asks the server to sign the account's active tab out.
    let send = move |takeover: bool| {
        if pending.get_untracked() {
            return;
        }
        let creds = Credentials {
            username: username.get_untracked(),
            password: password.get_untracked(),
            takeover,
        };
        if let Err(message) = check(&creds, new_account) {
            error.set(Some(message));
            return;
        }
        pending.set(true);
        error.set(None);
        in_use.set(false);
        let sent = submit.clone()(creds);
        spawn_local(async move {
            let result = sent.await;
            // The form may be gone by now (navigated away): try_ setters.
            let _ = pending.try_set(false);
            if let Err(e) = result {
                let _ = in_use.try_set(e.code() == Some(ErrorCode::AccountInUse));
                let _ = error.try_set(Some(e.message()));
            }
        });
    };
    let on_submit = {
        let send = send.clone();
        move |ev: SubmitEvent| {
            ev.prevent_default();
            send(false);
        }
    };

    let username_id = format!("{id}-username");
    let password_id = format!("{id}-password");
    view! {
        <form method="post" on:submit=on_submit novalidate>
            <label for=username_id.clone()>"Username"</label>
            <input
                id=username_id
                name="username"
                autocomplete="username"
                aria-describedby=new_account.then_some("username-rules")
                required
                bind:value=username
            />
            {new_account.then(|| view! {
                <p id="username-rules" class="hint">
                    {format!("{} to {} letters, digits, '_', '.' or '-'.", rules::USERNAME_MIN, rules::USERNAME_MAX)}
                </p>
            })}
            <label for=password_id.clone()>"Password"</label>
            <input
                id=password_id
                name="password"
                type="password"
                autocomplete=if new_account { "new-password" } else { "current-password" }
                aria-describedby=new_account.then_some("password-rules")
                required
                bind:value=password
            />
            {new_account.then(|| view! {
                <p id="password-rules" class="hint">
                    {format!("{} to {} characters.", rules::PASSWORD_MIN, rules::PASSWORD_MAX)}
                </p>
            })}
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <TakeoverButton in_use pending confirm={
                let send = send.clone();
                move |()| send(true)
            }/>
            <button
                type="submit"
                disabled=move || !hydrated.get() || pending.get() || ready.is_some_and(|r| !r.get())
            >
                {move || if pending.get() { pending_label } else { submit_label }}
            </button>
        </form>
    }
}

/// What can be said before asking the server. A new account gets the server's own rules;
/// a login only needs both fields filled.
fn check(creds: &Credentials, new_account: bool) -> Result<(), String> {
    if new_account {
        let username = rules::username(&creds.username)?;
        return rules::new_password(username, &creds.password);
    }
    if creds.username.trim().is_empty() || creds.password.is_empty() {
        return Err("Enter your username and password.".into());
    }
    Ok(())
}
