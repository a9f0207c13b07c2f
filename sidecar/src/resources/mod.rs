//! Dapr resource documents (Component, Configuration, Resiliency, HTTPEndpoint) as the sidecar
//! reads them: the standalone loader for `--resources-path` folders and `--config`, and the
//! decoding both hosting modes share.
//!
//! The shapes are the `crds` crate's, the one definition of each resource in the workspace;
//! this module only adds what the sidecar needs on top: how a document becomes a typed value
//! ([`decode`]) and small accessors ([`DaprResource::name`], [`enabled_features`]).

mod document;
mod loader;

/// The trust domain of apps whose Configuration names none, as in Dapr.
pub const DEFAULT_TRUST_DOMAIN: &str = "public";

pub use crds::configuration::Configuration;
pub use crds::{Component, HTTPEndpoint, NameValuePair, Resiliency};
pub use document::{DaprResource, decode, decode_json};
pub use loader::{LoadError, Loaded, load_configuration, load_resources};

/// Names of the preview features the configuration switches on, for the metadata API.
pub fn enabled_features(config: &Configuration) -> Vec<String> {
    config
        .spec
        .features
        .iter()
        .filter(|f| f.enabled == Some(true))
        .map(|f| f.name.clone())
        .collect()
}
