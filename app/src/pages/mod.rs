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
