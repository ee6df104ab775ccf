use leptos::ev::SubmitEvent;
use leptos::html::Section;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;

use crate::Hydrated;
use crate::api;
use crate::contract::TakeBack;
use crate::display::{browser_summary, local_time};
use crate::rules;
use crate::session::Session;

/// What a superseded tab shows: who took over, when and from where, and a way back in.
/// It is an alert and takes focus, so screen readers announce it at once.
#[component]
pub fn SupersededNotice(
    username: String,
    at: String,
    user_agent: Option<String>,
    ip: Option<String>,
) -> impl IntoView {
    let session = Session::expect();
    let navigate = use_navigate();
    let alert = NodeRef::<Section>::new();
    Effect::new(move |_| {
        if let Some(alert) = alert.get() {
            let _ = alert.focus();
        }
    });
    let account = username.clone();
    let known_browser = user_agent.is_some();
    let browser = browser_summary(user_agent.as_deref());
    let sign_in_again = move |_| {
        session.sign_out(None);
        navigate("/login", Default::default());
    };

    view! {
        <section class="card superseded" role="alert" tabindex="-1" node_ref=alert aria-labelledby="superseded-title">
            <h1 id="superseded-title">"This tab is no longer active"</h1>
            <p>
                "Your account " <strong>{username}</strong> " was signed in elsewhere at "
                <time datetime=at.clone()>{local_time(&at)}</time>
                // The server tells who took over only for a while (and the IP only if the
                // site allows it); another tab's word alone never includes the IP.
                {known_browser.then(|| view! {
                    ", from " <strong class="superseded-browser">{browser}</strong>
                })}
                {ip.map(|ip| view! { " at " <strong class="superseded-ip">{ip}</strong> })}
                "."
            </p>
            <p>"Only the most recent sign-in of an account can be used."</p>
            {user_agent.map(|ua| view! {
                <details>
                    <summary>"Full browser description"</summary>
                    <p class="user-agent">{ua}</p>
                </details>
            })}
            <button type="button" on:click=sign_in_again>"Sign in here again"</button>
            <NotMe username=account/>
        </section>
    }
}

/// "That wasn't me": whoever signed in knew the password, so taking the account back needs
/// the password and a new one; every other tab is then signed out.
#[component]
fn NotMe(username: String) -> impl IntoView {
    let session = Session::expect();
    let Hydrated(hydrated) = expect_context::<Hydrated>();
    let open = RwSignal::new(false);
    let password = RwSignal::new(String::new());
    let new_password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if pending.get_untracked() {
            return;
        }
        let request = TakeBack {
            username: username.clone(),
            password: password.get_untracked(),
            new_password: new_password.get_untracked(),
        };
        if let Err(message) = rules::new_password(&request.username, &request.new_password) {
            error.set(Some(message));
            return;
        }
        pending.set(true);
        error.set(None);
        spawn_local(async move {
            // On success the tab is active again, and the page follows the session.
            let result = api::take_back(session, &request).await;
            let _ = pending.try_set(false);
            if let Err(e) = result {
                let _ = error.try_set(Some(e.message()));
            }
        });
    };
    view! {
        <div class="not-me">
            <button type="button" class="secondary" aria-expanded=move || open.get().to_string()
                on:click=move |_| open.update(|o| *o = !*o)>
                "That wasn’t me"
            </button>
            <form method="post" on:submit=on_submit novalidate hidden=move || !open.get()>
                <p class="hint">
                    "Whoever signed in knew your password. Enter it and choose a new one: "
                    "every other tab is signed out at once, and only the new password works from now on."
                </p>
                <label for="not-me-password">"Your password"</label>
                <input id="not-me-password" type="password" autocomplete="current-password"
                    required bind:value=password/>
                <label for="not-me-new">"New password"</label>
                <input id="not-me-new" type="password" autocomplete="new-password"
                    required bind:value=new_password/>
                {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <button type="submit" disabled=move || !hydrated.get() || pending.get()>
                    {move || if pending.get() { "Taking it back…" } else { "Take my account back" }}
                </button>
            </form>
        </div>
    }
}
