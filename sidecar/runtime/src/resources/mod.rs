//! Dapr resource documents (Component, Configuration, Resiliency, HTTPEndpoint) as the sidecar
//! reads them: the standalone loader for `--resources-path` folders and `--config`, and the
//! decoding both hosting modes share.
//!
//! The shapes are the `crds` crate's, the one definition of each resource in the workspace;
//! `crds::document` turns a document into its typed value; this module reads the files and
//! adds small accessors ([`enabled_features`]).

mod loader;

pub use security::DEFAULT_TRUST_DOMAIN;

pub use crds::configuration::Configuration;
pub use crds::document::{DaprResource, DocumentError, decode, decode_json};
pub use crds::{Component, HTTPEndpoint, NameValuePair, Resiliency};
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
