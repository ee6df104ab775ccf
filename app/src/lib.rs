//! Solotab's shared crate: the wire contract, the input rules, and the Leptos UI.
//!
//! The tab's UID lives in memory in [`api`], the only code that reads it; [`session`] is what
//! the pages show about the sign-in.

pub mod api;
pub mod contract;
pub mod display;
pub mod rules;
pub mod session;

mod components;
mod pages;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::components::{ConnectionBanner, Header};
use crate::pages::{AboutPage, HomePage, LoginPage, NotFoundPage, RegisterPage};
use crate::session::Session;

/// The HTML document the server renders around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" href="data:,"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
                // After the app: hydration walks the body from its first node.
                <noscript>
                    <p class="noscript">
                        "Solotab needs JavaScript: it keeps your sign-in in this tab's memory, "
                        "which only a running app can do. Please enable JavaScript and reload."
                    </p>
                </noscript>
            </body>
        </html>
    }
}

/// Whether this page has hydrated: forms stay disabled until then, so nothing is ever
/// submitted the browser's way (a GET would put the password in the URL).
#[derive(Clone, Copy)]
pub struct Hydrated(pub ReadSignal<bool>);

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let session = Session::provide();
    let (hydrated, set_hydrated) = signal(false);
    provide_context(Hydrated(hydrated));
    // Effects run only in the browser, after hydration.
    Effect::new(move |_| {
        set_hydrated.set(true);
        api::listen_to_other_tabs(session);
    });

    // Their code is fetched on first visit in a split build (see `pages::lazy_page`).
    #[cfg(lazy_pages)]
    let (sessions, admin) = (
        leptos_router::Lazy::<pages::LazySessionsPage>::new(),
        leptos_router::Lazy::<pages::LazyAdminPage>::new(),
    );
    #[cfg(not(lazy_pages))]
    let (sessions, admin) = (pages::SessionsPage, pages::AdminPage);

    view! {
        <Stylesheet id="leptos" href="/pkg/solotab.css"/>
        <Title text="Solotab"/>
        <Router>
            <Header/>
            <ConnectionBanner/>
            <main id="main">
                <Routes fallback=NotFoundPage>
                    <Route path=path!("/") view=HomePage/>
                    <Route path=path!("/login") view=LoginPage/>
                    <Route path=path!("/register") view=RegisterPage/>
                    <Route path=path!("/about") view=AboutPage/>
                    <Route path=path!("/sessions") view=sessions/>
                    <Route path=path!("/admin") view=admin/>
                </Routes>
            </main>
        </Router>
    }
}
