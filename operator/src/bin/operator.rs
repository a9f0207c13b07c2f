//! The `operator` binary: flags, the control plane's common frame, then the library's
//! `run`.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // `-port 50001` as Dapr's tooling writes it, or `--port 50001`.
    let flags = operator::Flags::parse_from(kit::args::go_style(std::env::args()));
    control_plane::init(&flags.log_level, flags.log_as_json);
    match operator::run(flags).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("operator failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
