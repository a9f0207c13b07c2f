//! The Dapr-compatible sidecar: the `daprd` runtime as a library, so tests drive the
//! same code the binary runs. Requests flow one way: `api` (HTTP and gRPC front doors) →
//! `blocks` (building blocks) → `components` (backends). Nothing here knows about
//! Kubernetes or the control plane; those arrive through `resources`.

pub mod api;
pub mod app;
pub mod blocks;
pub mod components;
pub mod config;
pub mod errors;
pub mod logging;
pub mod metrics;
pub mod mtls;
pub mod resiliency;
pub mod resources;
pub mod runtime;
