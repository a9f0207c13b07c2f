//! What the tests that start real processes share: free loopback ports, a process handle
//! that keeps its log and is killed when dropped, one way to find (and, if stale, build)
//! each of the workspace's binaries, `eventually`, `kubectl`, `helm`, builders for `daprd`,
//! `sentry` and the `operator`, stand-in apps and certificate fixtures.
//!
//! Test code only: panics are how these helpers report a broken environment.

#![allow(clippy::unwrap_used)]

pub mod apps;
mod binaries;
pub mod certs;
pub mod daprd;
mod helm;
pub mod jaeger;
mod kubectl;
pub mod operator;
mod process;
pub mod sentry;

use std::future::Future;
use std::time::{Duration, Instant};

pub use binaries::binary;
pub use helm::{helm, helm_ok};
pub use kubectl::{bound_token, deployment, kubectl, kubectl_ok};
pub use process::Process;

/// A port nothing listens on right now. Another test may take it before it is used, so
/// callers that bind it should retry on "Address already in use".
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `N` distinct free loopback ports: all are held at once while choosing, so no two are
/// the same (another process may still take one before it is bound).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<_> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("free port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("free port").port())
}

/// Polls `check` every 50 ms until it holds; panics after `within` naming `what`. Returns
/// how long it took, which some tests report.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
