use leptos::html::Section;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::display::{browser_summary, local_time};
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
            <p>"Only the most recent sign-in of an account can be used. If that was not you, sign in here and change your password."</p>
            {user_agent.map(|ua| view! {
                <details>
                    <summary>"Full browser description"</summary>
                    <p class="user-agent">{ua}</p>
                </details>
            })}
            <button type="button" on:click=sign_in_again>"Sign in here again"</button>
        </section>
    }
}
