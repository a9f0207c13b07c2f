//! Dapr resource documents (Component, Configuration, Resiliency, HTTPEndpoint) as the sidecar
//! reads them: the standalone loader for `--resources-path` folders and `--config`, and the
//! decoding both hosting modes share.
//!
//! The shapes are the `crds` crate's, the one definition of each resource in the workspace;
//! `crds::document` turns a document into its typed value; this module reads the files and
//! adds small accessors ([`enabled_features`]).

mod loader;
mod trace_spec;

pub use security::DEFAULT_TRUST_DOMAIN;

pub use crds::configuration::Configuration;
pub use crds::document::{DaprResource, DocumentError, decode, decode_json};
pub use crds::{Component, HTTPEndpoint, NameValuePair, Resiliency};
pub use loader::{LoadError, Loaded, load_configuration, load_resources};
pub use trace_spec::trace_settings;

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

/// The Configuration's metric settings as the metrics crate takes them: `spec.metrics`
/// overrides `spec.metric` field by field, as Dapr merges them, over Dapr's defaults.
pub fn metric_options(config: &Configuration) -> metrics::Options {
    let specs = [config.spec.metric.as_ref(), config.spec.metrics.as_ref()];
    let mut options = metrics::Options::default();
    for spec in specs.into_iter().flatten() {
        if let Some(enabled) = spec.enabled {
            options.api = enabled;
        }
        if let Some(record) = spec.record_error_codes {
            options.record_error_codes = record;
        }
        if let Some(buckets) = spec
            .latency_distribution_buckets
            .as_ref()
            .filter(|b| !b.is_empty())
        {
            options.latency_buckets_ms = buckets.iter().map(|b| *b as f64).collect();
        }
        if let Some(http) = &spec.http {
            options.increased_cardinality = http.increased_cardinality.unwrap_or(true);
            options.path_matching = http.path_matching.clone();
            options.exclude_verbs = http.exclude_verbs.unwrap_or(false);
        }
    }
    options
}
