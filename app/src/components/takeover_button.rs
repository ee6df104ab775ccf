use leptos::prelude::*;

/// "Sign out the other tab and continue": shown where the server refused a sign-in because
/// the account has an active tab (the deny-new policy, 409 `account_in_use`); `confirm`
/// sends the same sign-in again, asking to take over.
#[component]
pub fn TakeoverButton(
    /// Whether the server said the account is in use.
    in_use: RwSignal<bool>,
    /// Whether a request is on its way (the button waits).
    pending: RwSignal<bool>,
    #[prop(into)] confirm: Callback<()>,
) -> impl IntoView {
    move || {
        in_use.get().then(|| {
            view! {
                <button type="button" class="takeover" on:click=move |_| confirm.run(())
                    disabled=move || pending.get()>
                    "Sign out the other tab and continue"
                </button>
            }
        })
    }
}
