//! One component per route.

mod about;
mod admin;
mod home;
mod login;
mod not_found;
mod register;
mod sessions;

pub use about::AboutPage;
pub use admin::AdminPage;
pub use home::HomePage;
pub use login::LoginPage;
pub use not_found::NotFoundPage;
pub use register::RegisterPage;
pub use sessions::SessionsPage;

/// Declares `$lazy`, a route for `$page` whose code the browser fetches when the page is
/// first opened. Only in a split wasm build (`cargo leptos build --split`, see build.rs): an
/// unsplit wasm cannot load code lazily, so there (and on the server) the page is an
/// ordinary route.
macro_rules! lazy_page {
    ($lazy:ident, $page:ident) => {
        #[cfg(lazy_pages)]
        pub struct $lazy;

        #[cfg(lazy_pages)]
        #[leptos_router::lazy_route]
        impl leptos_router::LazyRoute for $lazy {
            fn data() -> Self {
                Self
            }

            fn view(_this: Self) -> leptos::prelude::AnyView {
                use leptos::prelude::*;
                view! { <$page/> }.into_any()
            }
        }
    };
}

// Most visitors never open these two.
lazy_page!(LazySessionsPage, SessionsPage);
lazy_page!(LazyAdminPage, AdminPage);
