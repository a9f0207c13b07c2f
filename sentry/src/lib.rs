//! Sentry, the certificate authority of a Dapr deployment. A workload proves who it is
//! (a Kubernetes ServiceAccount token, or nothing in standalone mode) and sends a CSR;
//! Sentry answers with a short-lived ECDSA P-256 certificate whose URI SAN is the
//! workload's SPIFFE ID, `spiffe://<trust domain>/ns/<namespace>/<app id>`, plus the trust
//! anchors. The root and issuer come from files or the `dapr-trust-bundle` Secret, are
//! generated when missing, and are reloaded when they change.
//!
//! It knows nothing about what the certificates are used for.

pub mod ca;
pub mod config;
pub mod flags;
pub mod run;
pub mod server;
pub mod trust;
pub mod validator;

pub use flags::Flags;
