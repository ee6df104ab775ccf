//! Command-line and environment configuration (`server --help` lists it all).

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "server",
    version,
    about = "Solotab: one active tab per account.",
    long_about = "Solotab: one active tab per account.\n\n\
        Serves the Leptos app and its JSON API. Every login issues a fresh per-tab UID and \
        the server accepts only each account's latest one."
)]
pub struct Config {
    /// SQLite database file; created and migrated on first start. One server per file.
    #[arg(long, env = "SOLOTAB_DB", default_value = "solotab.db")]
    pub db: PathBuf,

    /// Address to listen on [default: the Leptos site address, 127.0.0.1:3000].
    #[arg(long, env = "LEPTOS_SITE_ADDR")]
    pub addr: Option<SocketAddr>,

    /// Days that superseded and logged-out tabs are remembered (at least 30), so they can be
    /// told why they were stopped; after that they are pruned and get `unknown_uid`.
    #[arg(long, env = "SOLOTAB_HISTORY_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(30..=3650))]
    pub history_days: u32,

    /// Password hashes computed at once (each takes 19 MiB) [default: number of CPUs].
    #[arg(long, env = "SOLOTAB_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<NonZeroUsize>,

    /// Log filter, in tracing's EnvFilter syntax (e.g. `info`, `solotab=debug`).
    #[arg(long, env = "SOLOTAB_LOG", default_value = "info")]
    pub log: String,
}

impl Config {
    pub fn history(&self) -> Duration {
        Duration::from_secs(u64::from(self.history_days) * 24 * 60 * 60)
    }

    pub fn hash_concurrency(&self) -> usize {
        self.hash_concurrency
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(2, NonZeroUsize::get)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn help_names_every_environment_variable() {
        let help = Config::command().render_long_help().to_string();
        for var in [
            "SOLOTAB_DB",
            "LEPTOS_SITE_ADDR",
            "SOLOTAB_HISTORY_DAYS",
            "SOLOTAB_HASH_CONCURRENCY",
            "SOLOTAB_LOG",
        ] {
            assert!(help.contains(var), "--help does not mention {var}:\n{help}");
        }
    }

    #[test]
    fn history_is_kept_at_least_30_days() {
        assert!(Config::try_parse_from(["server", "--history-days", "29"]).is_err());
        let default = Config::try_parse_from(["server"]).unwrap();
        assert_eq!(default.history(), Duration::from_secs(30 * 86_400));
        let config = Config::try_parse_from(["server", "--history-days", "90"]).unwrap();
        assert_eq!(config.history(), Duration::from_secs(90 * 86_400));
    }
}
