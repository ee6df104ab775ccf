use std::process::ExitCode;

use clap::Parser;
use leptos::config::{LeptosOptions, get_configuration};
use solotab::config::Config;
use solotab::{http, site, startup};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), String> {
    let options = leptos_options().map_err(|e| format!("invalid Leptos configuration: {e}"))?;
    let addr = config.addr.unwrap_or(options.site_addr);
    let state = startup::state(&config).await.map_err(|e| e.to_string())?;
    let router = site::router(options).merge(http::router(state.clone()));
    let listener = startup::bind(addr).await.map_err(|e| e.to_string())?;
    startup::serve(
        listener,
        router,
        &state,
        config.history(),
        startup::shutdown_signal(),
    )
    .await
    .map_err(|e| format!("server error: {e}"))
}

/// cargo-leptos passes the site's settings as LEPTOS_* variables; a binary started on its
/// own (tests, a plain `target/debug/server`) falls back to the workspace defaults.
fn leptos_options() -> Result<LeptosOptions, String> {
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
