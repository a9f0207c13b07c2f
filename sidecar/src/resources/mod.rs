//! Dapr resource documents (Component, Configuration, ...) and the standalone loader that
//! reads them from `--resources-path` folders.

mod component;
mod configuration;
mod http_endpoint;
mod loader;
mod resiliency;

pub use component::{Component, ComponentSpec, MetadataItem, SecretKeyRef};
pub use configuration::Configuration;
pub use http_endpoint::{EndpointHeader, HttpEndpoint, HttpEndpointSpec};
pub use loader::{LoadError, Loaded, load_configuration, load_resources};
pub use resiliency::Resiliency;
