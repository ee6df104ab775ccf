use std::process::ExitCode;

use clap::Parser;
use solotab::config::Config;
use solotab::startup;
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
    if let Some(command) = config.command.clone() {
        let done = startup::run_command(&config, command).await?;
        println!("{done}");
        return Ok(());
    }
    let options =
        startup::leptos_options().map_err(|e| format!("invalid Leptos configuration: {e}"))?;
    let addr = config.addr.unwrap_or(options.site_addr);
    let state = startup::state(&config).await.map_err(|e| e.to_string())?;
    let router = startup::app(options, state.clone(), config.request_timeout());
    let listener = startup::bind(addr).await.map_err(|e| e.to_string())?;
    startup::serve(
        listener,
        router,
        &state,
        &config,
        startup::shutdown_signal(),
    )
    .await
    .map_err(|e| format!("server error: {e}"))
}
