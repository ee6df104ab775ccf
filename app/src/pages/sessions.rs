use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::A;

use crate::Hydrated;
use crate::api::{self, ApiError};
use crate::components::active_tab_only;
use crate::contract::{AccountEventInfo, AccountSessions, BrowserInfo, SignOut, TabInfo};
use crate::display::{browser_summary, local_time};
use crate::session::Session;

/// `/sessions`: the account's active tabs and signed-in browsers (each but this one can be
/// signed out from here) and what happened to the account lately.
#[component]
pub fn SessionsPage() -> impl IntoView {
    active_tab_only(|_, _| view! { <YourSessions/> })
}

#[component]
fn YourSessions() -> impl IntoView {
    let session = Session::expect();
    let Hydrated(hydrated) = expect_context::<Hydrated>();
    let sessions = RwSignal::new(None::<AccountSessions>);
    let message = RwSignal::new(None::<Result<String, String>>);
    let pending = RwSignal::new(false);
    // Bumped to load the page again after a change.
    let version = RwSignal::new(0u32);
    Effect::new(move |_| {
        version.track();
        spawn_local(async move {
            match api::sessions(session).await {
                Ok(loaded) => {
                    let _ = sessions.try_set(Some(loaded));
                }
                // The session now says why, and the page follows it.
                Err(ApiError::SignedOut) => {}
                Err(e) => {
                    let _ = message.try_set(Some(Err(e.message())));
                }
            }
        });
    });
    let sign_out = move |request: SignOut| {
        if pending.get_untracked() {
            return;
        }
        pending.set(true);
        message.set(None);
        spawn_local(async move {
            let result = api::sign_out_elsewhere(session, &request).await;
            let _ = pending.try_set(false);
            let _ = message.try_set(Some(match result {
                Ok(done) if request.browser.is_some() => Ok(format!(
                    "That browser was signed out ({}).",
                    tabs_count(done.tabs)
                )),
                Ok(done) if done.tabs == 1 => Ok("One tab was signed out.".into()),
                Ok(done) => Ok(format!("{} tabs were signed out.", done.tabs)),
                Err(e) => Err(e.message()),
            }));
            let _ = version.try_update(|n| *n += 1);
        });
    };
    let busy = move || !hydrated.get() || pending.get();

    view! {
        <section class="card" aria-labelledby="tabs-title">
            <h1 id="tabs-title">"Your sessions"</h1>
            <p class="hint">"Every tab signed in to your account now. Sign out any you do not recognise."</p>
            {move || message.get().map(|m| match m {
                Ok(text) => view! { <p class="notice" role="status">{text}</p> }.into_any(),
                Err(text) => view! { <p class="error" role="alert">{text}</p> }.into_any(),
            })}
            {move || match sessions.get() {
                None => view! { <p>"Loading…"</p> }.into_any(),
                Some(loaded) => view! {
                    <ul class="tabs">
                        {loaded.tabs.into_iter().map(|tab| view! {
                            <TabRow tab busy on_sign_out=move |id| sign_out(SignOut { tab: Some(id), ..SignOut::default() })/>
                        }).collect_view()}
                    </ul>
                }.into_any(),
            }}
            <button type="button" class="secondary" disabled=busy
                on:click=move |_| sign_out(SignOut { everywhere_else: true, ..SignOut::default() })>
                "Sign out everywhere else"
            </button>
            <p class="hint">"Signs out every other tab, and stops other browsers from using “Use here”."</p>
        </section>
        <SignedInBrowsers sessions busy on_sign_out=move |id| sign_out(SignOut { browser: Some(id), ..SignOut::default() })/>
        <section class="card" aria-labelledby="history-title">
            <h2 id="history-title">"Recent activity"</h2>
            {move || sessions.get().map(|loaded| view! {
                <ol class="history">
                    {loaded.events.into_iter().map(|event| view! { <EventRow event/> }).collect_view()}
                </ol>
            })}
            <p><A href="/">"Back to your home page"</A></p>
            {move || sessions.get().filter(|loaded| loaded.admin).map(|_| view! {
                <p><A href="/admin">"Admin: every account's tabs"</A></p>
            })}
        </section>
    }
}

/// One active tab: which browser, from where, since when; "Sign out" unless it is this one.
#[component]
fn TabRow(
    tab: TabInfo,
    busy: impl Fn() -> bool + Send + Sync + 'static,
    on_sign_out: impl Fn(String) + Send + Sync + 'static,
) -> impl IntoView {
    let browser = browser_summary(tab.user_agent.as_deref());
    let id = tab.id.clone();
    view! {
        <li class="tab">
            <strong>{browser}</strong>
            {tab.this_tab.then(|| view! { <span class="badge">" (this tab)"</span> })}
            <span class="where">" from " {tab.ip}</span>
            <br/>
            <span class="when">
                "Signed in " <time datetime=tab.signed_in_at.clone()>{local_time(&tab.signed_in_at)}</time>
                ", last active " <time datetime=tab.last_seen.clone()>{local_time(&tab.last_seen)}</time>
            </span>
            {tab.timed_out_at.map(|at| view! {
                <br/>
                <span class="timed-out">"Timed out " <time datetime=at.clone()>{local_time(&at)}</time>": it must sign in again"</span>
            })}
            {(!tab.this_tab).then(|| view! {
                <button type="button" class="secondary" disabled=busy
                    on:click=move |_| on_sign_out(id.clone())>
                    "Sign out this tab"
                </button>
            })}
        </li>
    }
}

/// The browsers that may "Use here" for the account, each but this one with "Sign out".
#[component]
fn SignedInBrowsers(
    sessions: RwSignal<Option<AccountSessions>>,
    busy: impl Fn() -> bool + Send + Sync + Copy + 'static,
    on_sign_out: impl Fn(String) + Send + Sync + Copy + 'static,
) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="browsers-title">
            <h2 id="browsers-title">"Signed-in browsers"</h2>
            <p class="hint">"Browsers where the password was typed: they may come back with “Use here” until signed out."</p>
            {move || sessions.get().map(|loaded| view! {
                <ul class="browsers">
                    {loaded.browsers.into_iter().map(|browser| view! {
                        <BrowserRow browser busy on_sign_out/>
                    }).collect_view()}
                </ul>
            })}
        </section>
    }
    .into_any()
}

/// One signed-in browser: which, from where, since when; "Sign out" unless it is this one.
#[component]
fn BrowserRow(
    browser: BrowserInfo,
    busy: impl Fn() -> bool + Send + Sync + 'static,
    on_sign_out: impl Fn(String) + Send + Sync + 'static,
) -> impl IntoView {
    let name = browser_summary(browser.user_agent.as_deref());
    let id = browser.id.clone();
    view! {
        <li class="browser">
            <strong>{name}</strong>
            {browser.this_browser.then(|| view! { <span class="badge">" (this browser)"</span> })}
            {browser.ip.map(|ip| view! { <span class="where">" from " {ip}</span> })}
            <br/>
            <span class="when">
                "Signed in " <time datetime=browser.signed_in_at.clone()>{local_time(&browser.signed_in_at)}</time>
                ", latest " <time datetime=browser.last_sign_in.clone()>{local_time(&browser.last_sign_in)}</time>
            </span>
            {(!browser.this_browser).then(|| view! {
                <button type="button" class="secondary" disabled=busy
                    on:click=move |_| on_sign_out(id.clone())>
                    "Sign out this browser"
                </button>
            })}
        </li>
    }
}

/// "1 tab", "3 tabs".
fn tabs_count(tabs: usize) -> String {
    if tabs == 1 {
        "1 tab".into()
    } else {
        format!("{tabs} tabs")
    }
}

#[component]
fn EventRow(event: AccountEventInfo) -> impl IntoView {
    let what = match event.kind.as_str() {
        "login" => "Signed in".to_owned(),
        "takeover" => "Signed in, and another tab was signed out".to_owned(),
        "use_here" => "Signed in with “Use here”".to_owned(),
        "logout" => "Signed out".to_owned(),
        "expired" => "A tab’s sign-in expired".to_owned(),
        "rejected_stale" => "A tab that was no longer signed in was turned away".to_owned(),
        "password_changed" => "Password changed; other tabs were signed out".to_owned(),
        "revoked" => "Tabs or browsers were signed out from “Your sessions”".to_owned(),
        "taken_back" => {
            "You took the account back (“That wasn’t me”): other tabs were signed out and the password changed"
                .to_owned()
        }
        other => other.to_owned(),
    };
    let from = match (&event.user_agent, &event.ip) {
        (None, None) => String::new(),
        (ua, ip) => format!(
            " — {}{}",
            browser_summary(ua.as_deref()),
            ip.as_deref()
                .map(|ip| format!(" from {ip}"))
                .unwrap_or_default()
        ),
    };
    view! {
        <li>
            <time datetime=event.at.clone()>{local_time(&event.at)}</time>
            ": " {what} {from}
        </li>
    }
}
