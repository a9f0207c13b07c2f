//! What the sidecar and the control plane share for mutual TLS: SPIFFE identities read
//! from certificates, TLS configurations whose certificate can be swapped while
//! connections stay up, and the client that gets (and renews) a workload certificate
//! from Sentry.
//!
//! rustls checks certificate chains; who the peer is (its SPIFFE ID) is checked here.
//! Nothing in this crate knows about building blocks or components.

pub mod renewal;
pub mod sentry_client;
pub mod sentry_token;
pub mod spiffe;
pub mod tls;

pub use sentry_client::{SentryClient, SentryError};
pub use sentry_token::{SentryToken, TokenError};
pub use spiffe::SpiffeId;

/// The trust domain of apps whose Configuration names none, as in Dapr.
pub const DEFAULT_TRUST_DOMAIN: &str = "public";
pub use tls::{IdentityCell, channel_with_tls, client_config, peer_id, server_config};
