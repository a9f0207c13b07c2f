use serde::Deserialize;
use serde_json::Value;

/// A `dapr.io/v1alpha1` Configuration. Only the parts the sidecar acts on today are typed;
/// the rest of `spec` is kept so later features can read it without a reload.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Configuration {
    #[serde(default)]
    pub metadata: super::component::ObjectMeta,
    #[serde(default)]
    pub spec: ConfigurationSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationSpec {
    #[serde(default)]
    pub features: Vec<Feature>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Feature {
    pub name: String,
    #[serde(default)]
    pub enabled: bool,
}

impl Configuration {
    /// Names of the preview features switched on, for the metadata API.
    pub fn enabled_features(&self) -> Vec<String> {
        self.spec
            .features
            .iter()
            .filter(|f| f.enabled)
            .map(|f| f.name.clone())
            .collect()
    }
}
