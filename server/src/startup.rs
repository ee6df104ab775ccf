//! Putting the pieces together: open the store, load the registry, serve until stopped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue};
use leptos::config::{LeptosOptions, get_configuration};
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::{Config, Database};
use crate::device::Devices;
use crate::http::{AllowedOrigins, AppState, Channels, Disclosure, Services, Throttles};
use crate::passwords::{PasswordError, Passwords};
use crate::registry::Registry;
use crate::store::{
    AccountStore, ConnectError, DeviceStore, FanOut, OpenError, PostgresStore, RedisConnectError,
    RedisStore, SessionStore, SqliteStore, StoreError,
};
use crate::time::UnixMillis;

/// How often remembered sessions older than the history period are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// How long shutdown waits for the push channels to say goodbye.
const CHANNELS_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    ConnectRedis(#[from] RedisConnectError),
    #[error("--redis-url needs a PostgreSQL --database-url: with SQLite one server runs alone")]
    RedisWithoutPostgres,
    #[error(transparent)]
    Policy(#[from] crate::config::PolicyError),
    #[error("cannot load sessions: {0}")]
    Load(#[from] StoreError),
    #[error(transparent)]
    Passwords(#[from] PasswordError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Opens the stores named by `config` and makes the registry on them: loaded into memory
/// from SQLite (which this server then holds exclusively), or reading PostgreSQL (or Redis),
/// which other instances may share, and following its fan-out.
pub async fn state(config: &Config) -> Result<AppState, StartError> {
    let policy = config.policy()?;
    let (registry, accounts, devices): (_, Arc<dyn AccountStore>, Arc<dyn DeviceStore>) =
        match (config.database(), &config.redis_url) {
            (Database::Sqlite(_), Some(_)) => return Err(StartError::RedisWithoutPostgres),
            (Database::Sqlite(path), None) => {
                let store = Arc::new(SqliteStore::open(&path)?);
                let registry = Registry::load(store.clone(), config.history()).await?;
                if let Some((active, remembered)) = registry.counts() {
                    tracing::info!(db = %path.display(), active, remembered, "sessions loaded");
                }
                (registry, store.clone(), store)
            }
            (Database::Postgres(url), redis) => {
                let postgres = Arc::new(PostgresStore::connect(&url).await?);
                let registry = match redis {
                    None => {
                        tracing::info!(
                            database = postgres.target(),
                            "sessions shared in PostgreSQL"
                        );
                        shared_registry(postgres.clone(), postgres.listen())
                    }
                    Some(redis) => {
                        let (prefix, history) = (&config.redis_prefix, config.history());
                        let sessions =
                            Arc::new(RedisStore::connect(&redis.0, prefix, history).await?);
                        tracing::info!(
                            database = postgres.target(),
                            redis = sessions.target(),
                            "accounts in PostgreSQL, sessions shared in Redis"
                        );
                        let fan_out = sessions.listen();
                        shared_registry(sessions, fan_out)
                    }
                };
                (registry, postgres.clone(), postgres)
            }
        };
    Ok(AppState::new(Services {
        registry: registry
            .with_policy(policy)
            .with_lifetime(config.absolute_timeout)
            .with_idle_timeout(config.idle_timeout),
        accounts: Arc::clone(&accounts),
        devices: Devices::new(devices, config.device_lifetime()),
        passwords: Passwords::new(config.hash_concurrency())?,
        channels: Channels::new(config.ping_every()),
        origins: AllowedOrigins::new(config.allowed_origins.iter().cloned()),
        disclosure: Disclosure {
            hide_ip: config.hide_superseded_ip,
        },
        throttles: Throttles::new(config.max_login_failures, config.max_registrations_per_hour),
        proxies: config.trusted_proxies(),
        metrics: crate::metrics::Metrics::new(),
        history: crate::history::History::new(accounts),
        mode: config.mode.into(),
    }))
}

/// `GET /metrics`: the Prometheus text exposition of `state`'s metrics, with the gauges read
/// now. Served on `--metrics-addr` only, apart from the site.
pub fn metrics_router(state: AppState) -> Router {
    let scrape = move || {
        let state = state.clone();
        async move {
            use axum::http::{StatusCode, header::CONTENT_TYPE};
            use axum::response::IntoResponse;
            match state.registry.active_tabs().await {
                Ok(active) => {
                    let active = usize::try_from(active).unwrap_or(usize::MAX);
                    let text = state.metrics.render(active, state.channels.open());
                    let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
                    ([(CONTENT_TYPE, kind)], text).into_response()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: cannot count active tabs");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the store cannot be read\n",
                    )
                        .into_response()
                }
            }
        }
    };
    Router::new().route("/metrics", axum::routing::get(scrape))
}

/// Runs one administrative task (see [`crate::config::Command`]); returns what to print.
pub async fn run_command(
    config: &Config,
    command: crate::config::Command,
) -> Result<String, String> {
    let accounts: Arc<dyn AccountStore> = match config.database() {
        Database::Sqlite(path) => Arc::new(SqliteStore::open(&path).map_err(|e| e.to_string())?),
        Database::Postgres(url) => Arc::new(
            PostgresStore::connect(&url)
                .await
                .map_err(|e| e.to_string())?,
        ),
    };
    let find = |username: String| {
        let accounts = Arc::clone(&accounts);
        async move {
            let key = app::rules::username_key(&username);
            accounts
                .find(&key)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no account is named {username:?}"))
        }
    };
    match command {
        crate::config::Command::SetPolicy {
            username,
            policy,
            max_tabs,
        } => {
            let policy = policy.policy(max_tabs).map_err(|e| e.to_string())?;
            let record = find(username.clone()).await?;
            let set = accounts
                .set_policy(record.id, policy)
                .await
                .map_err(|e| e.to_string())?;
            if !set {
                return Err(format!("the account {username:?} is gone"));
            }
            Ok(match policy {
                Some(policy) => format!(
                    "{}: {policy} (overrides the server's --policy from the next login)",
                    record.username,
                ),
                None => format!("{}: the server's --policy", record.username),
            })
        }
        crate::config::Command::SetMode { username, mode } => {
            let record = find(username.clone()).await?;
            if !accounts
                .set_mode(record.id, mode.mode())
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!("the account {username:?} is gone"));
            }
            Ok(match mode.mode() {
                Some(mode) => format!(
                    "{}: {} (overrides the server's --mode)",
                    record.username,
                    mode.as_str()
                ),
                None => format!("{}: the server's --mode", record.username),
            })
        }
        crate::config::Command::Admin { action, username } => {
            let record = find(username.clone()).await?;
            let admin = action == crate::config::AdminAction::Grant;
            let set = accounts
                .set_admin(record.id, admin)
                .await
                .map_err(|e| e.to_string())?;
            if !set {
                return Err(format!("the account {username:?} is gone"));
            }
            Ok(if admin {
                format!("{}: administrator (from its next request)", record.username)
            } else {
                format!("{}: no longer an administrator", record.username)
            })
        }
    }
}

/// A registry on a store other instances share, told of their ends by `fan_out`.
fn shared_registry(
    store: Arc<dyn SessionStore>,
    fan_out: tokio::sync::mpsc::Receiver<FanOut>,
) -> Registry {
    let registry = Registry::shared(store);
    tokio::spawn({
        let registry = registry.clone();
        async move { registry.follow(fan_out).await }
    });
    registry
}

/// Everything the binary serves: the Leptos site and the API, one router, with the
/// browser-hardening headers on every response and a deadline on every request.
pub fn app(options: LeptosOptions, state: AppState, request_timeout: Duration) -> Router {
    let router = crate::site::router(options).merge(crate::http::router(state));
    let headers: [(&str, &str); 5] = [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        // Nothing here uses these; no embedded content may either.
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), \
             display-capture=()",
        ),
    ];
    headers
        .into_iter()
        .fold(router, |router, (name, value)| {
            router.layer(SetResponseHeaderLayer::if_not_present(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            ))
        })
        .layer(axum::middleware::from_fn(strict_transport_security))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| async move {
                // A client trickling its body holds a task and a connection: give up on it.
                // (A push channel's upgrade answers at once; the channel itself is not timed.)
                match tokio::time::timeout(request_timeout, next.run(request)).await {
                    Ok(response) => response,
                    Err(_) => axum::response::IntoResponse::into_response(
                        crate::http::ApiError::RequestTimeout,
                    ),
                }
            },
        ))
}

/// HSTS, only where the page was served over https: sent over plain http it would be
/// ignored at best, and would lock a misconfigured site out at worst.
async fn strict_transport_security(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let https = crate::http::served_over_https(request.headers());
    let mut response = next.run(request).await;
    if https {
        response.headers_mut().insert(
            axum::http::header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// cargo-leptos passes the site's settings as LEPTOS_* variables; a binary started on its
/// own (tests, a plain `target/debug/server`) falls back to the workspace defaults.
pub fn leptos_options() -> Result<LeptosOptions, String> {
    if std::env::var_os("LEPTOS_OUTPUT_NAME").is_some() {
        return get_configuration(None)
            .map(|conf| conf.leptos_options)
            .map_err(|e| e.to_string());
    }
    Ok(LeptosOptions::builder()
        .output_name("solotab")
        .site_root(std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into()))
        .site_pkg_dir("pkg")
        .build())
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Serves `router` on `listener` until `shutdown` resolves, pruning old history and expired
/// devices hourly. On shutdown every push channel is closed with "server restarting" first,
/// and in-flight requests are let finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    state: &AppState,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let pruner = tokio::spawn(prune_hourly(
        state.registry.clone(),
        state.devices.clone(),
        config.history(),
    ));
    let metrics = match config.metrics_addr {
        Some(addr) => {
            let listener = bind(addr).await.map_err(std::io::Error::other)?;
            tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
            let router = metrics_router(state.clone());
            Some(tokio::spawn(
                async move { axum::serve(listener, router).await },
            ))
        }
        None => None,
    };
    let channels = state.channels.clone();
    let shutdown = {
        let channels = channels.clone();
        async move {
            shutdown.await;
            channels.close_all();
        }
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("listening on http://{addr}");
    }
    let served =
        crate::connections::serve(listener, router, config.connection_limits(), shutdown).await;
    // Upgraded connections are not the HTTP server's any more: wait for them here.
    channels.closed(CHANNELS_GRACE).await;
    pruner.abort();
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    served
}

async fn prune_hourly(registry: Registry, devices: Devices, history: Duration) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    loop {
        every.tick().await;
        match registry.prune(UnixMillis::now().minus(history)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "forgot sessions past the history period"),
            Err(e) => tracing::warn!(error = %e, "pruning old sessions failed; will retry"),
        }
        match devices.prune().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "forgot expired devices"),
            Err(e) => tracing::warn!(error = %e, "pruning expired devices failed; will retry"),
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
