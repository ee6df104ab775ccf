use leptos::prelude::*;
use leptos_router::components::Redirect;

use crate::components::SupersededNotice;
use crate::session::{Session, TabState};

/// A page only the account's active tab may see: `active` renders it with the username and
/// the sign-in time. A superseded tab is told what happened instead, and the page is
/// removed, not hidden; a tab without a sign-in is sent to the login page.
pub fn active_tab_only<V: IntoView + 'static>(
    active: impl Fn(String, String) -> V + Send + Sync + 'static,
) -> impl IntoView {
    let session = Session::expect();
    move || match session.state() {
        TabState::Active {
            username,
            issued_at,
            ..
        } => active(username, issued_at).into_any(),
        TabState::Superseded {
            username,
            at,
            user_agent,
            ip,
        } => view! { <SupersededNotice username at user_agent ip/> }.into_any(),
        TabState::SignedOut { .. } => view! { <Redirect path="/login"/> }.into_any(),
    }
}
