use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::Hydrated;
use crate::api::{self, ApiError};
use crate::components::active_tab_only;
use crate::contract::{AdminPolicy, AdminTab, AdminTabs, ErrorCode};
use crate::display::{browser_summary, local_time};
use crate::session::Session;

/// `/admin`: for administrators, every account's active tabs (searchable, 50 a page), with
/// a sign-out per account, and a form to set an account's policy.
#[component]
pub fn AdminPage() -> impl IntoView {
    active_tab_only(|_, _| view! { <Admin/> })
}

#[component]
fn Admin() -> impl IntoView {
    let session = Session::expect();
    let listing = RwSignal::new(None::<AdminTabs>);
    let forbidden = RwSignal::new(false);
    let message = RwSignal::new(None::<Result<String, String>>);
    let search = RwSignal::new(String::new());
    // What the list shows: the search as submitted, and the page.
    let query = RwSignal::new((String::new(), 1u32));
    let version = RwSignal::new(0u32);
    Effect::new(move |_| {
        version.track();
        let (search, page) = query.get();
        spawn_local(async move {
            match api::admin_tabs(session, &search, page).await {
                Ok(found) => {
                    let _ = listing.try_set(Some(found));
                }
                Err(ApiError::Refused(e)) if e.error == ErrorCode::NotAdmin => {
                    let _ = forbidden.try_set(true);
                }
                Err(ApiError::SignedOut) => {}
                Err(e) => {
                    let _ = message.try_set(Some(Err(e.message())));
                }
            }
        });
    });
    let on_search = move |ev: SubmitEvent| {
        ev.prevent_default();
        query.set((search.get_untracked(), 1));
    };
    let sign_out = move |username: String| {
        message.set(None);
        spawn_local(async move {
            let result = api::admin_sign_out(session, &username).await;
            let _ = message.try_set(Some(match result {
                Ok(done) => Ok(format!("{username}: {} tab(s) signed out.", done.tabs)),
                Err(e) => Err(e.message()),
            }));
            let _ = version.try_update(|n| *n += 1);
        });
    };
    let turn = move |by: i64| {
        query.update(|(_, page)| *page = (i64::from(*page) + by).max(1) as u32);
    };

    view! {
        <section class="card" aria-labelledby="admin-title">
            <h1 id="admin-title">"Admin: active tabs"</h1>
            {move || forbidden.get().then(|| view! {
                <p class="error" role="alert">"This page is for administrators."</p>
            })}
            {move || message.get().map(|m| match m {
                Ok(text) => view! { <p class="notice" role="status">{text}</p> }.into_any(),
                Err(text) => view! { <p class="error" role="alert">{text}</p> }.into_any(),
            })}
            <form role="search" on:submit=on_search hidden=move || forbidden.get()>
                <label for="admin-search">"Username contains"</label>
                <input id="admin-search" type="search" bind:value=search/>
                <button type="submit">"Search"</button>
            </form>
            {move || listing.get().map(|found| view! { <Listing found turn on_sign_out=sign_out/> })}
        </section>
        {move || (!forbidden.get()).then(|| view! { <SetPolicy/> })}
    }
}

/// One page of tabs, and the buttons to the pages around it.
#[component]
fn Listing(
    found: AdminTabs,
    turn: impl Fn(i64) + Copy + Send + Sync + 'static,
    on_sign_out: impl Fn(String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let (page, pages) = (found.page, found.pages);
    view! {
        <p class="hint">{format!("{} active tab(s). Page {page} of {pages}.", found.total)}</p>
        <table class="admin-tabs">
            <thead><tr>
                <th scope="col">"Account"</th><th scope="col">"Browser"</th>
                <th scope="col">"IP"</th><th scope="col">"Signed in"</th>
                <th scope="col">"Last active"</th><th scope="col"></th>
            </tr></thead>
            <tbody>
                {found.tabs.into_iter().map(|tab| view! { <TabRow tab on_sign_out/> }).collect_view()}
            </tbody>
        </table>
        <nav aria-label="Pages" class="pages">
            <button type="button" class="secondary" disabled=page <= 1 on:click=move |_| turn(-1)>"Previous"</button>
            <button type="button" class="secondary" disabled=page >= pages on:click=move |_| turn(1)>"Next"</button>
        </nav>
    }
    .into_any()
}

#[component]
fn TabRow(
    tab: AdminTab,
    on_sign_out: impl Fn(String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let username = tab.username.clone();
    view! {
        <tr>
            <td>{tab.username}</td>
            <td>{browser_summary(tab.user_agent.as_deref())}</td>
            <td>{tab.ip}</td>
            <td><time datetime=tab.signed_in_at.clone()>{local_time(&tab.signed_in_at)}</time></td>
            <td>
                <time datetime=tab.last_seen.clone()>{local_time(&tab.last_seen)}</time>
                {tab.timed_out_at.map(|at| view! {
                    " " <span class="timed-out">"(timed out " <time datetime=at.clone()>{local_time(&at)}</time>")"</span>
                })}
            </td>
            <td>
                <button type="button" class="secondary" on:click=move |_| on_sign_out(username.clone())>
                    "Sign out account"
                </button>
            </td>
        </tr>
    }
}

/// An account's own policy: the server's (`default`), latest-wins, deny-new, or max-tabs N.
#[component]
fn SetPolicy() -> impl IntoView {
    let session = Session::expect();
    let Hydrated(hydrated) = expect_context::<Hydrated>();
    let username = RwSignal::new(String::new());
    let policy = RwSignal::new("default".to_owned());
    let max_tabs = RwSignal::new("2".to_owned());
    let outcome = RwSignal::new(None::<Result<String, String>>);
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let request = AdminPolicy {
            username: username.get_untracked(),
            policy: policy.get_untracked(),
            max_tabs: (policy.get_untracked() == "max-tabs")
                .then(|| max_tabs.get_untracked().trim().parse().unwrap_or(0)),
        };
        spawn_local(async move {
            let result = api::admin_policy(session, &request).await;
            let _ = outcome.try_set(Some(match result {
                Ok(()) => Ok(format!(
                    "{}: {} from the next sign-in.",
                    request.username, request.policy
                )),
                Err(e) => Err(e.message()),
            }));
        });
    };
    view! {
        <section class="card" aria-labelledby="policy-title">
            <h2 id="policy-title">"An account's policy"</h2>
            <form on:submit=on_submit>
                <label for="policy-username">"Username"</label>
                <input id="policy-username" required bind:value=username/>
                <label for="policy-name">"Policy"</label>
                <select id="policy-name" bind:value=policy>
                    <option value="default">"The server's"</option>
                    <option value="latest-wins">"Latest wins"</option>
                    <option value="deny-new">"Deny new sign-ins"</option>
                    <option value="max-tabs">"Up to N tabs"</option>
                </select>
                <Show when=move || policy.get() == "max-tabs">
                    <label for="policy-max-tabs">"Tabs at most"</label>
                    <input id="policy-max-tabs" type="number" min="1" max="64" bind:value=max_tabs/>
                </Show>
                {move || outcome.get().map(|o| match o {
                    Ok(text) => view! { <p class="notice" role="status">{text}</p> }.into_any(),
                    Err(text) => view! { <p class="error" role="alert">{text}</p> }.into_any(),
                })}
                <button type="submit" disabled=move || !hydrated.get()>"Set policy"</button>
            </form>
        </section>
    }
}
