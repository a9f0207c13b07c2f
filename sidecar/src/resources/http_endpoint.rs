use serde::Deserialize;
use serde_json::Value;

use super::component::{ObjectMeta, SecretKeyRef};

/// A `dapr.io/v1alpha1` HTTPEndpoint: a non-Dapr HTTP service invoked by name.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpEndpoint {
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: HttpEndpointSpec,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpEndpointSpec {
    pub base_url: String,
    #[serde(default)]
    pub headers: Vec<EndpointHeader>,
    /// TLS settings for `https` endpoints, kept for when TLS to endpoints lands.
    #[serde(default, rename = "clientTLS")]
    pub client_tls: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointHeader {
    pub name: String,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub secret_key_ref: Option<SecretKeyRef>,
}

impl HttpEndpoint {
    pub fn in_scope(&self, app_id: &str) -> bool {
        self.scopes.is_empty() || self.scopes.iter().any(|s| s == app_id)
    }
}
