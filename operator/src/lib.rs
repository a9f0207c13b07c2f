//! The Dapr operator for Kubernetes. It watches the `dapr.io` resources and serves them to
//! sidecars over `dapr.proto.operator.v1.Operator` (each sidecar sees only its own
//! namespace, listed once and then streamed as it changes), and keeps a headless
//! `<app-id>-dapr` Service for every Deployment and StatefulSet annotated
//! `dapr.io/enabled: "true"`. Several replicas may run: all serve sidecars, only the holder
//! of the Lease reconciles and records Events.
//!
//! It knows the Kubernetes API and the operator wire contract; it knows nothing about
//! components' behaviour, which stays in the sidecar.

pub mod api;
pub mod cache;
pub mod flags;
pub mod health;
pub mod kinds;
pub mod run;
pub mod secrets;
pub mod services;
pub mod validate;
pub mod webhook;

pub use flags::Flags;
pub use run::run;
