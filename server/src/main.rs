use std::process::ExitCode;

use clap::Parser;
use solotab::config::Config;
use solotab::startup;
use tracing_subscriber::EnvFilter;

/// jemalloc, built to ask for transparent huge pages (`.cargo/config.toml`): every request
/// reads the registry's tables at random places, and with 4 KiB pages each such read also
/// walks the page tables (docs/BENCHMARKS.md).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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

#[cfg(all(test, feature = "jemalloc", target_os = "linux"))]
mod tests {
    /// Kibibytes of this process's memory in transparent huge pages.
    fn huge_page_kib() -> u64 {
        let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").expect("Linux /proc");
        rollup
            .lines()
            .find_map(|line| line.strip_prefix("AnonHugePages:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("an AnonHugePages line")
    }

    #[test]
    fn large_allocations_get_huge_pages_where_the_kernel_gives_them() {
        let path = "/sys/kernel/mm/transparent_hugepage/enabled";
        let mode = std::fs::read_to_string(path).unwrap_or_default();
        if !(mode.contains("[madvise]") || mode.contains("[always]")) {
            // "[never]": none to give. (Under "[always]" any allocator gets them; the test
            // shows the allocator's part under "[madvise]", the kernel's default.)
            eprintln!("this kernel gives no huge pages ({path}: {mode:?}); nothing to check");
            return;
        }
        let before = huge_page_kib();
        let table = vec![1u8; 64 << 20];
        let gained = huge_page_kib().saturating_sub(before);
        std::hint::black_box(&table);
        // Most of it: the ends of the block need not be aligned to 2 MiB.
        assert!(
            gained >= 32 << 10,
            "64 MiB allocated, {gained} KiB of it in huge pages (THP mode {mode:?})"
        );
    }
}
