//! `daprd`: the sidecar binary. Parses flags, sets up logging, and runs the runtime from
//! the `runtime` library until SIGTERM, Ctrl-C or `POST /v1.0/shutdown`.

use std::process::ExitCode;
use std::time::Instant;

use components_core::Registry;
use runtime as sidecar;
use runtime::config::{DAPR_COMPAT_VERSION, Env, Flags, InvalidChoice, parse_args};
use runtime::logging::DaprJson;

/// Every component backend this binary can build. Adding a backend crate means one line
/// here.
fn registry() -> Registry {
    let mut registry = Registry::default();
    components_memory::register(&mut registry);
    components_redis::register(&mut registry);
    components_postgres::register(&mut registry);
    components_sqlite::register(&mut registry);
    components_local::register(&mut registry);
    components_mdns::register(&mut registry);
    components_kubernetes::register(&mut registry);
    components_mqtt::register(&mut registry);
    components_rabbitmq::register(&mut registry);
    components_nats::register(&mut registry);
    components_kafka::register(&mut registry);
    components_http::register(&mut registry);
    registry
}

fn init_logging(flags: &Flags) {
    let level = match flags.log_level.to_ascii_lowercase().as_str() {
        "debug" => "debug",
        "warn" | "warning" => "warn",
        "error" | "fatal" => "error",
        _ => "info",
    };
    let filter =
        tracing_subscriber::EnvFilter::new(format!("{level},h2=warn,hyper=warn,tower=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false);
    if flags.log_as_json {
        builder
            .event_format(DaprJson::new(&flags.app_id, DAPR_COMPAT_VERSION))
            .init();
    } else {
        builder.init();
    }
}

async fn wait_for_signal(running: &sidecar::Running) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                return running.shutdown_requested().await;
            }
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("Received signal 'terminated'; beginning shutdown"),
            _ = tokio::signal::ctrl_c() => tracing::info!("Received signal 'interrupt'; beginning shutdown"),
            _ = running.shutdown_requested() => tracing::info!("Shutdown requested through the API"),
        }
    }
    #[cfg(not(unix))]
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = running.shutdown_requested() => {},
    }
}

fn invalid_choice(e: &clap::Error) -> Option<&InvalidChoice> {
    std::error::Error::source(e)?.downcast_ref::<InvalidChoice>()
}

fn main() -> ExitCode {
    let started = Instant::now();
    let flags = match parse_args(std::env::args()) {
        Ok(f) => f,
        // A value Dapr takes as a string and refuses only once running (`--mode`,
        // `--app-protocol`) fails the start as Dapr's does: its message, exit status 1.
        Err(e) if invalid_choice(&e).is_some() => {
            if let Some(choice) = invalid_choice(&e) {
                eprintln!("fatal: {choice}");
            }
            return ExitCode::FAILURE;
        }
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if flags.version {
        println!("{DAPR_COMPAT_VERSION}");
        return ExitCode::SUCCESS;
    }
    if flags.build_info {
        println!(
            "Version: {DAPR_COMPAT_VERSION}\nGit Commit: {}\nGit Version: sidecar-{}",
            option_env!("GIT_COMMIT").unwrap_or("unknown"),
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    let env = Env::from_process();
    init_logging(&flags);
    // Two worker threads keep idle memory small; the sidecar is I/O bound.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        tracing::info!(
            "Starting Dapr Runtime -- version {DAPR_COMPAT_VERSION} -- app id {}",
            flags.app_id
        );
        tracing::info!("Log level set to: {}", flags.log_level);
        let running = match sidecar::start(&flags, &env, registry(), started).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("Fatal error from runtime: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        wait_for_signal(&running).await;
        if running.shutdown_is_forced() {
            tracing::warn!("Forced shutdown requested through the API; exiting now");
            // Long enough for the 204 (or OK) to reach the caller, no longer.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            std::process::exit(1);
        }
        match running.stop().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e:#}");
                ExitCode::FAILURE
            }
        }
    })
}
