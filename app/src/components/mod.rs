//! Small pieces shared by the pages.

mod active_tab_only;
mod change_password;
mod connection_banner;
mod credentials_form;
mod header;
mod superseded_notice;
mod takeover_button;

pub use active_tab_only::active_tab_only;
pub use change_password::ChangePassword;
pub use connection_banner::ConnectionBanner;
pub use credentials_form::CredentialsForm;
pub use header::Header;
pub use superseded_notice::SupersededNotice;
pub use takeover_button::TakeoverButton;
