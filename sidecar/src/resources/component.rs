use serde::Deserialize;
use serde_json::Value;

/// A `dapr.io/v1alpha1` Component, with `auth` and `scopes` beside `spec` as in Dapr.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: ComponentSpec,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub auth: Option<Auth>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    /// Set on objects from the API server; tells a changed component from a repeat.
    #[serde(default)]
    pub resource_version: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    #[serde(default)]
    pub secret_store: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub ignore_errors: bool,
    #[serde(default)]
    pub init_timeout: Option<String>,
    #[serde(default)]
    pub metadata: Vec<MetadataItem>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataItem {
    pub name: String,
    /// Free-form: YAML numbers and booleans are as valid as strings.
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub secret_key_ref: Option<SecretKeyRef>,
    #[serde(default)]
    pub env_ref: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SecretKeyRef {
    pub name: String,
    #[serde(default)]
    pub key: String,
}

impl Component {
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// Whether this app may load the component: no scopes means everyone.
    pub fn in_scope(&self, app_id: &str) -> bool {
        self.scopes.is_empty() || self.scopes.iter().any(|s| s == app_id)
    }
}

impl MetadataItem {
    /// The literal value as a string, the way Dapr hands metadata to components.
    pub fn literal(&self) -> Option<String> {
        match self.value.as_ref()? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}
