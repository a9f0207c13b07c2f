use std::collections::BTreeMap;
use std::sync::RwLock;

/// One loaded component as the metadata API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInfo {
    pub name: String,
    pub kind: String,
    pub version: String,
    pub capabilities: Vec<String>,
}

/// How the sidecar reaches its app, echoed by the metadata API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppConnection {
    pub port: u16,
    pub protocol: String,
    pub channel_address: String,
    pub max_concurrency: u32,
    pub health: Option<AppHealth>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppHealth {
    pub check_path: String,
    pub probe_interval: String,
    pub probe_timeout: String,
    pub threshold: u32,
}

/// Everything `GET /v1.0/metadata` and gRPC `GetMetadata` report, plus the attributes
/// apps set with `PUT /v1.0/metadata/{key}`.
#[derive(Debug)]
pub struct MetadataBlock {
    pub app_id: String,
    pub runtime_version: String,
    pub enabled_features: Vec<String>,
    /// Changes at runtime in Kubernetes mode, as the operator adds and removes components.
    components: RwLock<Vec<ComponentInfo>>,
    /// Names of the loaded `HTTPEndpoint` resources.
    pub http_endpoints: Vec<String>,
    pub app_connection: AppConnection,
    extended: RwLock<BTreeMap<String, String>>,
}

/// A snapshot handed to a front door to encode.
#[derive(Debug, Clone)]
pub struct MetadataView<'a> {
    pub block: &'a MetadataBlock,
    pub components: Vec<ComponentInfo>,
    pub extended: BTreeMap<String, String>,
}

impl MetadataBlock {
    pub fn new(
        app_id: String,
        runtime_version: String,
        enabled_features: Vec<String>,
        components: Vec<ComponentInfo>,
        app_connection: AppConnection,
    ) -> Self {
        let extended =
            BTreeMap::from([("daprRuntimeVersion".to_string(), runtime_version.clone())]);
        Self {
            app_id,
            runtime_version,
            enabled_features,
            components: RwLock::new(components),
            http_endpoints: Vec::new(),
            app_connection,
            extended: RwLock::new(extended),
        }
    }

    /// Stores an app-defined attribute. An empty key is ignored, as in Dapr.
    pub fn set(&self, key: &str, value: String) {
        if key.is_empty() {
            return;
        }
        let mut map = self.extended.write().unwrap_or_else(|e| e.into_inner());
        map.insert(key.to_string(), value);
    }

    /// Records a component loaded (or reloaded) while the sidecar runs.
    pub fn upsert_component(&self, info: ComponentInfo) {
        let mut list = self.components.write().unwrap_or_else(|e| e.into_inner());
        list.retain(|c| c.name != info.name);
        list.push(info);
    }

    pub fn remove_component(&self, name: &str) {
        let mut list = self.components.write().unwrap_or_else(|e| e.into_inner());
        list.retain(|c| c.name != name);
    }

    pub fn with_http_endpoints(mut self, names: Vec<String>) -> Self {
        self.http_endpoints = names;
        self
    }

    pub fn view(&self) -> MetadataView<'_> {
        let extended = self
            .extended
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let components = self
            .components
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        MetadataView {
            block: self,
            components,
            extended,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_attributes_include_the_runtime_version_and_app_values() {
        let m = MetadataBlock::new(
            "app".into(),
            "1.2.3".into(),
            vec![],
            vec![],
            Default::default(),
        );
        m.set("color", "blue".into());
        m.set("", "ignored".into());
        let v = m.view();
        assert_eq!(
            v.extended.get("daprRuntimeVersion").map(String::as_str),
            Some("1.2.3")
        );
        assert_eq!(v.extended.get("color").map(String::as_str), Some("blue"));
        assert_eq!(v.extended.len(), 2);
    }
}
