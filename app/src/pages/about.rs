use leptos::prelude::*;
use leptos_router::components::A;

/// `/about`: what Solotab does, in a few sentences. Needs no sign-in.
#[component]
pub fn AboutPage() -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="about-title">
            <h1 id="about-title">"How it works"</h1>
            <p>
                "Each sign-in gives this tab a fresh secret that lives only in the page's memory: "
                "never in a cookie, in browser storage or in the address bar. The server accepts "
                "only the newest secret of each account."
            </p>
            <p>
                "So signing in anywhere else, even in another tab of this browser, stops this "
                "tab at once: it is told when and from where, and what it was showing is removed."
            </p>
            <p>
                "Reloading the page forgets the secret. The browser you signed in with last may "
                "then take the account back with one click, \"Use here\", without the password; "
                "any other browser needs the password."
            </p>
            <p><A href="/">"Back to the home page"</A></p>
        </section>
    }
}
