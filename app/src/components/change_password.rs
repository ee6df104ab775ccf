use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::Hydrated;
use crate::api;
use crate::contract::PasswordChange;
use crate::rules;
use crate::session::Session;

/// "Change password", for the active tab: the current password and a new one. Other
/// browsers must then sign in with the new password; this tab stays signed in.
#[component]
pub fn ChangePassword(username: String) -> impl IntoView {
    let session = Session::expect();
    let Hydrated(hydrated) = expect_context::<Hydrated>();
    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let outcome = RwSignal::new(None::<Result<(), String>>);
    let pending = RwSignal::new(false);
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if pending.get_untracked() {
            return;
        }
        let change = PasswordChange {
            current: current.get_untracked(),
            new: new.get_untracked(),
        };
        if let Err(message) = rules::new_password(&username, &change.new) {
            outcome.set(Some(Err(message)));
            return;
        }
        pending.set(true);
        outcome.set(None);
        spawn_local(async move {
            let result = api::change_password(session, &change).await;
            let _ = pending.try_set(false);
            if result.is_ok() {
                let _ = current.try_set(String::new());
                let _ = new.try_set(String::new());
            }
            let _ = outcome.try_set(Some(result.map_err(|e| e.message())));
        });
    };
    view! {
        <section class="card" aria-labelledby="password-title">
            <h2 id="password-title">"Change password"</h2>
            <form method="post" on:submit=on_submit novalidate>
                <label for="password-current">"Current password"</label>
                <input id="password-current" type="password" autocomplete="current-password"
                    required bind:value=current/>
                <label for="password-new">"New password"</label>
                <input id="password-new" type="password" autocomplete="new-password"
                    aria-describedby="password-new-rules" required bind:value=new/>
                <p id="password-new-rules" class="hint">
                    {format!("{} to {} characters.", rules::PASSWORD_MIN, rules::PASSWORD_MAX)}
                </p>
                {move || outcome.get().map(|outcome| match outcome {
                    Ok(()) => view! {
                        <p class="notice" role="status">
                            "Password changed. Other browsers must sign in with the new one."
                        </p>
                    }.into_any(),
                    Err(message) => view! { <p class="error" role="alert">{message}</p> }.into_any(),
                })}
                <button type="submit" disabled=move || !hydrated.get() || pending.get()>
                    {move || if pending.get() { "Changing…" } else { "Change password" }}
                </button>
            </form>
        </section>
    }
}
