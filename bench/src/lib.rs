//! Code shared by the benchmark binaries: `state-bench` (the state API against direct
//! Redis) and `invoke-bench` (two-hop service invocation against direct calls to the app).

pub mod conn;
pub mod sidecar;
pub mod stats;
