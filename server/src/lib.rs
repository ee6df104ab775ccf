//! Solotab's server library.
//!
//! The enforcement core reads on its own and knows nothing of Leptos or HTTP:
//! - [`uid`]: the per-login UID, a credential (CSPRNG, constant-time equality, redacted);
//! - [`registry`]: which UID each account accepts (`claim`, `check`, `release`);
//! - [`store`]: the one trait per concern that backends implement (memory, SQLite,
//!   PostgreSQL, Redis);
//! - [`device`]: the browser that may "Use here" without the password (hashed tokens).
//!
//! Around it: [`passwords`] (argon2id, bounded), [`throttle`] (failed logins), [`http`] (the JSON API and push channel, thin),
//! [`site`] (the Leptos pages), [`connections`] (the accept loop and its limits), [`metrics`]
//! (Prometheus), [`config`] and [`startup`].

pub mod config;
pub mod connections;
pub mod device;
pub mod history;
pub mod http;
pub mod metrics;
pub mod passwords;
pub mod proxies;
pub mod registry;
pub mod site;
pub mod startup;
pub mod store;
pub mod throttle;
pub mod time;
pub mod uid;
