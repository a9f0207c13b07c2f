//! The `injector` binary: flags (Dapr's single-dash forms too), the control plane's
//! common frame, then the library's `run`.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let flags = injector::run::Flags::parse_from(kit::args::go_style(std::env::args()));
    control_plane::init(&flags.log_level, flags.log_as_json);
    match injector::run::run(flags).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("injector failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
