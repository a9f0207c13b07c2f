//! The sidecar injector, as Dapr's: a mutating admission webhook that adds the `daprd`
//! container to Pods annotated `dapr.io/enabled: "true"`.
//!
//! This crate grows in layers that know nothing of the ones above them:
//! - [`annotations`]: a Pod's `dapr.io/*` annotations read into typed settings, with Dapr's
//!   defaults and Dapr's leniency (a value that does not parse is ignored, with a warning);
//! - [`container`]: the `daprd` container for those settings and the injector's own;
//! - [`patch`]: the pure patch builder, Pod + settings → JSON Patch, or a refusal;
//! - [`review`]: one AdmissionReview (v1 or v1beta1) answered, with the allow-list of
//!   requesters;
//! - [`server`]: the `/mutate` route with Dapr's answers to bad requests;
//! - [`config`]: the injector's settings from its environment, with Dapr's names;
//! - [`ca_bundle`]: the webhook configuration's `caBundle` kept at the trust anchors;
//! - [`run`]: the process: flags, the certificate from Sentry, `/mutate` over TLS and
//!   `/healthz` on the shared control-plane crate's frame (binary: `src/bin/injector.rs`).

pub mod annotations;
pub mod ca_bundle;
pub mod config;
pub mod container;
pub mod patch;
pub mod pluggable;
pub mod review;
pub mod run;
pub mod server;
pub mod system_config;
pub mod volumes;
