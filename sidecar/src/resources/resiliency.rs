use serde::Deserialize;
use serde_json::Value;

use super::component::ObjectMeta;

/// A `dapr.io/v1alpha1` Resiliency document. `spec` stays raw here; the resiliency module
/// gives it meaning, so this loader stays a parser of documents only.
#[derive(Debug, Clone, Deserialize)]
pub struct Resiliency {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Value,
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl Resiliency {
    pub fn in_scope(&self, app_id: &str) -> bool {
        self.scopes.is_empty() || self.scopes.iter().any(|s| s == app_id)
    }
}
