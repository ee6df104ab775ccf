//! Command-line and environment configuration (`server --help` lists it all).

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::store::Policy;

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

    /// Where accounts and sessions live: `sqlite://PATH` (one server; the same as --db PATH)
    /// or `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (any number of instances may
    /// share it; migrated at start) [default: sqlite:// and the --db file].
    #[arg(long, env = "SOLOTAB_DATABASE_URL", conflicts_with = "db",
          value_parser = DatabaseUrlParser)]
    pub database_url: Option<Database>,

    /// With a PostgreSQL --database-url only: keep the registry (each account's active UID,
    /// and ended UIDs for the history period) and the instances' fan-out in Redis instead,
    /// `redis://[:PASSWORD@]HOST[:PORT][/DB]`; accounts and devices stay in PostgreSQL.
    /// Run Redis with `appendonly yes` and `appendfsync always` (see the README).
    #[arg(long, env = "SOLOTAB_REDIS_URL")]
    pub redis_url: Option<RedisUrl>,

    /// Prefix of every Redis key and channel this deployment uses.
    #[arg(long, env = "SOLOTAB_REDIS_PREFIX", default_value = "solotab:")]
    pub redis_prefix: String,

    /// Address to listen on [default: the Leptos site address, 127.0.0.1:3000].
    #[arg(long, env = "LEPTOS_SITE_ADDR")]
    pub addr: Option<SocketAddr>,

    /// What a login does when the account already has an active tab: `latest-wins` signs
    /// that tab out; `deny-new` refuses the login (409 `account_in_use`) unless it asks to
    /// take over (`"takeover": true`, the UI's "Sign out the other tab and continue");
    /// `max-tabs` allows up to --max-tabs active tabs and signs the oldest out beyond them.
    #[arg(long, env = "SOLOTAB_POLICY", value_enum, default_value_t = PolicyName::LatestWins)]
    pub policy: PolicyName,

    /// `enforce` rejects what the policy and timeouts say; `observe` (for a roll-out) serves
    /// it instead, and logs and counts what would have been rejected
    /// (`solotab_observed_total`). An account may have a mode of its own (`set-mode`).
    #[arg(long, env = "SOLOTAB_MODE", value_enum, default_value_t = ModeName::Enforce)]
    pub mode: ModeName,

    /// With `--policy max-tabs`: how many tabs of one account may be active at once (1 to 64).
    #[arg(long, env = "SOLOTAB_MAX_TABS", required_if_eq("policy", "max-tabs"),
          value_parser = clap::value_parser!(u16).range(1..=i64::from(crate::store::MAX_TABS)))]
    pub max_tabs: Option<u16>,

    /// The longest a sign-in lasts, e.g. `12h` or `90m`: after it the tab is told `expired`
    /// (at once, over its push channel) and must sign in again. Default: no limit.
    #[arg(long, env = "SOLOTAB_ABSOLUTE_TIMEOUT", value_parser = parse_timeout)]
    pub absolute_timeout: Option<Duration>,

    /// How long a tab may go without a request, e.g. `30m`: then it is told `expired` (at
    /// once, over its push channel) and must sign in again. Its push channel does not count
    /// as use. Default: no limit.
    #[arg(long, env = "SOLOTAB_IDLE_TIMEOUT", value_parser = parse_timeout)]
    pub idle_timeout: Option<Duration>,

    /// Days that superseded and logged-out tabs are remembered (at least 30), so they can be
    /// told why they were stopped; after that they are pruned and get `unknown_uid`.
    #[arg(long, env = "SOLOTAB_HISTORY_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(30..=3650))]
    pub history_days: u32,

    /// Password hashes computed at once (each takes 19 MiB) [default: number of CPUs - 1, at
    /// least 1: one core stays free for every other request during a login flood].
    #[arg(long, env = "SOLOTAB_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<NonZeroUsize>,

    /// Days a browser may "Use here" after its last password login (1 to 365).
    #[arg(long, env = "SOLOTAB_DEVICE_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=365))]
    pub device_days: u32,

    /// Origins allowed to open the push channel and "Use here", besides the server's own
    /// (scheme + the request's Host), comma-separated, e.g. `https://app.example.com`.
    #[arg(long, env = "SOLOTAB_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Seconds between the server's pings on each push channel (a channel silent for two
    /// intervals is closed).
    #[arg(long, env = "SOLOTAB_PING_SECS", default_value_t = 25,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub ping_secs: u64,

    /// Never tell a superseded tab the IP address of the login that took over (it is told
    /// the time, and for a day the browser; see SECURITY.md).
    #[arg(long, env = "SOLOTAB_HIDE_SUPERSEDED_IP")]
    pub hide_superseded_ip: bool,

    /// Failed logins within 15 minutes that block the client IP, and the account (except from
    /// the browser that last signed in to it), for 15 minutes, doubling each time; 0: off.
    #[arg(long, env = "SOLOTAB_MAX_LOGIN_FAILURES", default_value_t = 5)]
    pub max_login_failures: usize,

    /// Registrations per hour from one client IP; 0: no limit.
    #[arg(long, env = "SOLOTAB_MAX_REGISTRATIONS_PER_HOUR", default_value_t = 20)]
    pub max_registrations_per_hour: usize,

    /// Seconds a client has to send a request's headers; a slower one is disconnected
    /// (against "slowloris" clients that hold connections open by trickling bytes).
    #[arg(long, env = "SOLOTAB_HEADER_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub header_timeout_secs: u64,

    /// Seconds a request (its body included) may take before it is answered 408.
    #[arg(long, env = "SOLOTAB_REQUEST_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout_secs: u64,

    /// Open connections at most (push channels included); more are closed at once.
    #[arg(long, env = "SOLOTAB_MAX_CONNECTIONS", default_value_t = 16_384)]
    pub max_connections: usize,

    /// Open connections at most from one client IP (IPv6: its /64).
    #[arg(long, env = "SOLOTAB_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,

    /// Load balancers or reverse proxies whose `X-Forwarded-For` names the client, as
    /// comma-separated CIDR blocks or addresses (e.g. `10.0.0.0/8,::1`). From any other peer
    /// the header is ignored, so a client cannot choose the address it is throttled under
    /// or that a superseded tab is shown. Default: none.
    #[arg(long, env = "SOLOTAB_TRUSTED_PROXIES", value_delimiter = ',',
          value_parser = crate::proxies::parse_network)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Serve Prometheus metrics at `GET /metrics` on this address only, e.g.
    /// `127.0.0.1:9464` (keep it off the public network). Default: off.
    #[arg(long, env = "SOLOTAB_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Log filter, in tracing's EnvFilter syntax (e.g. `info`, `solotab=debug`).
    #[arg(long, env = "SOLOTAB_LOG", default_value = "info")]
    pub log: String,

    /// Instead of serving: one administrative task on the database, then exit.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The administrative tasks (`server <task> --help`).
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Gives one account a policy of its own, overriding --policy, or the server's again
    /// (`default`). Takes effect at the account's next login. With SQLite, stop the server
    /// first (the file is one process's).
    SetPolicy {
        /// The account's username (any case).
        username: String,
        #[arg(value_enum)]
        policy: AccountPolicy,
        /// With `max-tabs`: how many of the account's tabs may be active at once (1 to 64).
        #[arg(long, required_if_eq("policy", "max-tabs"),
              value_parser = clap::value_parser!(u16).range(1..=i64::from(crate::store::MAX_TABS)))]
        max_tabs: Option<u16>,
    },
    /// Gives one account a roll-out mode of its own (`observe` or `enforce`), overriding
    /// --mode, or the server's again (`default`). With SQLite, stop the server first.
    SetMode {
        /// The account's username (any case).
        username: String,
        #[arg(value_enum)]
        mode: AccountMode,
    },
    /// Grants an account the admin role (the admin page: every active tab, signing an
    /// account out, setting its policy), or revokes it. With SQLite, stop the server first.
    Admin {
        #[arg(value_enum)]
        action: AdminAction,
        /// The account's username (any case).
        username: String,
    },
}

/// `--mode`, as spelled on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeName {
    Enforce,
    Observe,
}

impl From<ModeName> for crate::store::Mode {
    fn from(name: ModeName) -> Self {
        match name {
            ModeName::Enforce => Self::Enforce,
            ModeName::Observe => Self::Observe,
        }
    }
}

/// An account's mode, as `set-mode` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccountMode {
    Enforce,
    Observe,
    /// The server's `--mode`.
    Default,
}

impl AccountMode {
    pub fn mode(self) -> Option<crate::store::Mode> {
        match self {
            AccountMode::Enforce => Some(crate::store::Mode::Enforce),
            AccountMode::Observe => Some(crate::store::Mode::Observe),
            AccountMode::Default => None,
        }
    }
}

/// `server admin grant|revoke NAME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AdminAction {
    Grant,
    Revoke,
}

/// An account's policy, as `set-policy` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccountPolicy {
    LatestWins,
    DenyNew,
    MaxTabs,
    /// The server's `--policy`.
    Default,
}

impl AccountPolicy {
    /// The policy, with `max_tabs` for `max-tabs` (clap requires it there); `None`: the
    /// server's.
    pub fn policy(self, max_tabs: Option<u16>) -> Result<Option<Policy>, PolicyError> {
        Ok(match self {
            AccountPolicy::LatestWins => Some(PolicyName::LatestWins.with(max_tabs)?),
            AccountPolicy::DenyNew => Some(PolicyName::DenyNew.with(max_tabs)?),
            AccountPolicy::MaxTabs => Some(PolicyName::MaxTabs.with(max_tabs)?),
            AccountPolicy::Default if max_tabs.is_some() => return Err(PolicyError::StrayLimit),
            AccountPolicy::Default => None,
        })
    }
}

/// `--policy`, as spelled on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyName {
    LatestWins,
    DenyNew,
    MaxTabs,
}

/// A policy name and a `--max-tabs` that do not go together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("--max-tabs (SOLOTAB_MAX_TABS) applies only with the max-tabs policy")]
    StrayLimit,
    #[error("the max-tabs policy needs --max-tabs N (SOLOTAB_MAX_TABS), 1 to 64")]
    NoLimit,
}

impl PolicyName {
    /// The policy this name and `max_tabs` spell.
    pub fn with(self, max_tabs: Option<u16>) -> Result<Policy, PolicyError> {
        match (self, max_tabs) {
            (PolicyName::MaxTabs, Some(limit)) => {
                Policy::max_tabs(limit).ok_or(PolicyError::NoLimit)
            }
            (PolicyName::MaxTabs, None) => Err(PolicyError::NoLimit),
            (_, Some(_)) => Err(PolicyError::StrayLimit),
            (PolicyName::LatestWins, None) => Ok(Policy::LatestWins),
            (PolicyName::DenyNew, None) => Ok(Policy::DenyNew),
        }
    }
}

/// Where accounts and sessions live (see `--database-url`).
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// An embedded file, for one server (the default).
    Sqlite(PathBuf),
    /// A PostgreSQL URL, as given. It may hold a password: never shown (see `Debug`).
    Postgres(String),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Database::Postgres(_) => f.write_str("Postgres(..)"),
        }
    }
}

/// A Redis URL, as given. It may hold a password: never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(pub String);

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisUrl(..)")
    }
}

impl std::str::FromStr for RedisUrl {
    type Err = std::convert::Infallible;

    /// Checked when connecting, so that no error here can quote a password.
    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Ok(Self(url.to_owned()))
    }
}

/// Parses `--database-url` with [`parse_database_url`]. Its own parser because clap's
/// usual errors quote the value, and a database URL may hold a password.
#[derive(Debug, Clone, Copy)]
struct DatabaseUrlParser;

impl clap::builder::TypedValueParser for DatabaseUrlParser {
    type Value = Database;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Database, clap::Error> {
        let invalid = |message: String| {
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!("invalid --database-url: {message}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| invalid("it is not UTF-8".into()))?;
        parse_database_url(text).map_err(invalid)
    }
}

/// `sqlite://PATH`, `sqlite:PATH` or `postgres[ql]://...`. Errors name the scheme only: the
/// rest of a URL may be a password.
fn parse_database_url(url: &str) -> Result<Database, String> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err("a sqlite:// URL needs a file path, e.g. sqlite://solotab.db".into());
        }
        return Ok(Database::Sqlite(PathBuf::from(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Database::Postgres(url.to_owned()));
    }
    let scheme = url
        .split_once("://")
        .map_or("(none)", |(scheme, _)| scheme)
        .chars()
        .take(20)
        .collect::<String>();
    Err(format!(
        "unsupported database URL scheme {scheme:?}: use sqlite://PATH or \
         postgres://USER@HOST:PORT/DATABASE"
    ))
}

/// A timeout as `humantime` writes it (`90s`, `30m`, `12h`), at least one second.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let timeout = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if timeout < Duration::from_secs(1) {
        return Err("a timeout must be at least 1s".into());
    }
    Ok(timeout)
}

impl Config {
    /// The server's policy: `--policy`, with `--max-tabs` for `max-tabs`.
    pub fn policy(&self) -> Result<Policy, PolicyError> {
        self.policy.with(self.max_tabs)
    }

    /// The database named by `--database-url`, else the `--db` file.
    pub fn database(&self) -> Database {
        self.database_url
            .clone()
            .unwrap_or_else(|| Database::Sqlite(self.db.clone()))
    }

    pub fn history(&self) -> Duration {
        Duration::from_secs(u64::from(self.history_days) * 24 * 60 * 60)
    }

    pub fn device_lifetime(&self) -> Duration {
        Duration::from_secs(u64::from(self.device_days) * 24 * 60 * 60)
    }

    pub fn ping_every(&self) -> Duration {
        Duration::from_secs(self.ping_secs)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn connection_limits(&self) -> crate::connections::Limits {
        crate::connections::Limits {
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            max_connections: self.max_connections.max(1),
            max_connections_per_ip: self.max_connections_per_ip.max(1),
            trusted_proxies: self.trusted_proxies(),
        }
    }

    pub fn trusted_proxies(&self) -> crate::proxies::TrustedProxies {
        crate::proxies::TrustedProxies::new(self.trusted_proxies.iter().copied())
    }

    pub fn hash_concurrency(&self) -> usize {
        self.hash_concurrency.map_or_else(
            || {
                std::thread::available_parallelism()
                    .map_or(1, |cpus| cpus.get().saturating_sub(1).max(1))
            },
            NonZeroUsize::get,
        )
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
            "SOLOTAB_DATABASE_URL",
            "SOLOTAB_REDIS_URL",
            "SOLOTAB_REDIS_PREFIX",
            "SOLOTAB_POLICY",
            "SOLOTAB_METRICS_ADDR",
            "SOLOTAB_ABSOLUTE_TIMEOUT",
            "LEPTOS_SITE_ADDR",
            "SOLOTAB_HISTORY_DAYS",
            "SOLOTAB_HASH_CONCURRENCY",
            "SOLOTAB_DEVICE_DAYS",
            "SOLOTAB_ALLOWED_ORIGINS",
            "SOLOTAB_PING_SECS",
            "SOLOTAB_HIDE_SUPERSEDED_IP",
            "SOLOTAB_MAX_LOGIN_FAILURES",
            "SOLOTAB_HEADER_TIMEOUT_SECS",
            "SOLOTAB_REQUEST_TIMEOUT_SECS",
            "SOLOTAB_MAX_CONNECTIONS",
            "SOLOTAB_MAX_CONNECTIONS_PER_IP",
            "SOLOTAB_MAX_REGISTRATIONS_PER_HOUR",
            "SOLOTAB_TRUSTED_PROXIES",
            "SOLOTAB_LOG",
        ] {
            assert!(help.contains(var), "--help does not mention {var}:\n{help}");
        }
    }

    #[test]
    fn the_database_is_sqlite_by_default_and_a_url_can_name_either_engine() {
        let default = Config::try_parse_from(["server"]).unwrap();
        assert_eq!(default.database(), Database::Sqlite("solotab.db".into()));
        let db = Config::try_parse_from(["server", "--db", "/tmp/x.db"]).unwrap();
        assert_eq!(db.database(), Database::Sqlite("/tmp/x.db".into()));
        for (url, expected) in [
            ("sqlite://data/s.db", Database::Sqlite("data/s.db".into())),
            ("sqlite:s.db", Database::Sqlite("s.db".into())),
            (
                "postgres://app:secret@db:5432/solotab",
                Database::Postgres("postgres://app:secret@db:5432/solotab".into()),
            ),
            (
                "postgresql://db/solotab",
                Database::Postgres("postgresql://db/solotab".into()),
            ),
        ] {
            let config = Config::try_parse_from(["server", "--database-url", url]).unwrap();
            assert_eq!(config.database(), expected, "{url}");
        }
        let postgres = Database::Postgres("postgres://app:secret@db/solotab".into());
        assert!(!format!("{postgres:?}").contains("secret"));
    }

    #[test]
    fn a_bad_database_url_is_refused_without_echoing_it() {
        for url in ["mysql://root:hunter2@db/x", "hunter2", "sqlite://"] {
            let error = Config::try_parse_from(["server", "--database-url", url])
                .unwrap_err()
                .to_string();
            assert!(error.contains("sqlite://"), "{url}: {error}");
            assert!(!error.contains("hunter2"), "{url}: {error}");
        }
        // One place for the database, not two that could disagree.
        let both = ["server", "--db", "a.db", "--database-url", "sqlite://b.db"];
        assert!(Config::try_parse_from(both).is_err());
    }

    #[test]
    fn the_policy_is_latest_wins_unless_another_is_asked_for() {
        let policy = |args: &[&str]| {
            let args = ["server"].iter().chain(args);
            Config::try_parse_from(args)
                .map_err(|e| e.to_string())?
                .policy()
                .map_err(|e| e.to_string())
        };
        assert_eq!(policy(&[]), Ok(Policy::LatestWins));
        assert_eq!(policy(&["--policy", "deny-new"]), Ok(Policy::DenyNew));
        assert_eq!(
            policy(&["--policy", "max-tabs", "--max-tabs", "3"]),
            Ok(Policy::MaxTabs(3))
        );
        assert!(policy(&["--policy", "oldest-wins"]).is_err());
        // max-tabs names its limit, within bounds; no other policy takes one.
        assert!(
            policy(&["--policy", "max-tabs"])
                .unwrap_err()
                .contains("--max-tabs")
        );
        assert!(policy(&["--policy", "max-tabs", "--max-tabs", "0"]).is_err());
        assert!(policy(&["--policy", "max-tabs", "--max-tabs", "65"]).is_err());
        assert_eq!(
            policy(&["--max-tabs", "2"]),
            Err(PolicyError::StrayLimit.to_string())
        );
    }

    #[test]
    fn timeouts_are_off_unless_given_and_at_least_a_second() {
        let default = Config::try_parse_from(["server"]).unwrap();
        assert_eq!(
            (default.absolute_timeout, default.idle_timeout),
            (None, None)
        );
        let both = [
            "server",
            "--absolute-timeout",
            "12h",
            "--idle-timeout",
            "30m",
        ];
        let both = Config::try_parse_from(both).unwrap();
        assert_eq!(both.absolute_timeout, Some(Duration::from_secs(12 * 3600)));
        assert_eq!(both.idle_timeout, Some(Duration::from_secs(30 * 60)));
        for bad in ["0s", "500ms", "soon", "-5m"] {
            assert!(
                Config::try_parse_from(["server", "--idle-timeout", bad]).is_err(),
                "{bad}"
            );
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

    #[test]
    fn channel_and_device_settings_have_defaults_and_bounds() {
        let default = Config::try_parse_from(["server"]).unwrap();
        assert_eq!(default.device_lifetime(), Duration::from_secs(30 * 86_400));
        assert_eq!(default.ping_every(), Duration::from_secs(25));
        assert!(default.allowed_origins.is_empty());
        assert!(Config::try_parse_from(["server", "--device-days", "0"]).is_err());
        assert!(Config::try_parse_from(["server", "--ping-secs", "0"]).is_err());
        let listed = Config::try_parse_from([
            "server",
            "--allowed-origins",
            "https://a.example,https://b.example",
        ])
        .unwrap();
        assert_eq!(
            listed.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
    }
}
