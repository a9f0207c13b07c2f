//! The environment variables the sidecar reads, read once at startup beside the flags, so
//! that nothing deeper in the sidecar depends on the process environment.

/// What Dapr's sidecar takes from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// `NAMESPACE` as set. Unset, the sidecar is in `default` ([`Env::namespace`]), but
    /// the `namespace` key prefix of state stores is the app id alone, as in Dapr.
    pub namespace_var: Option<String>,
    /// `DAPR_API_TOKEN`: when set, every API but healthz requires it.
    pub api_token: Option<String>,
    /// `APP_API_TOKEN`: sent to the app as `dapr-api-token`.
    pub app_api_token: Option<String>,
    /// `DAPR_HOST_IP`: the address other sidecars reach this one at, when set. Unset, the
    /// sidecar announces its loopback listen address or each interface's own.
    pub host_ip: Option<String>,
    /// `DAPR_TRUST_ANCHORS`: the PEM roots that certificates are checked against under mTLS.
    pub trust_anchors: String,
    /// The OpenTelemetry variables ([`OTEL_VARS`]) that are set, by name: they fill in
    /// `spec.tracing.otel` and the exported resource, as in Dapr.
    pub otel: std::collections::BTreeMap<&'static str, String>,
}

/// The `OTEL_*` variables the sidecar's tracing reads.
pub const OTEL_VARS: &[&str] = &[
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
];

impl Env {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        Self::from_lookup(env_var)
    }

    /// Builds from any lookup (a test's map, say); empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        Self {
            namespace_var: get("NAMESPACE"),
            api_token: get("DAPR_API_TOKEN"),
            app_api_token: get("APP_API_TOKEN"),
            host_ip: get("DAPR_HOST_IP"),
            trust_anchors: get("DAPR_TRUST_ANCHORS").unwrap_or_default(),
            otel: OTEL_VARS
                .iter()
                .filter_map(|name| Some((*name, get(name)?)))
                .collect(),
        }
    }
}

impl Env {
    /// This sidecar's namespace: `NAMESPACE`, or `default` as in Dapr's standalone mode.
    pub fn namespace(&self) -> &str {
        self.namespace_var.as_deref().unwrap_or("default")
    }
}

impl Default for Env {
    /// An empty environment.
    fn default() -> Self {
        Self::from_lookup(|_| None)
    }
}

/// The one place the sidecar reads a process environment variable: [`Env`] at startup,
/// and the `envRef`s of component metadata.
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_empty_values() {
        let env = Env::default();
        assert_eq!(
            (env.namespace(), env.namespace_var.as_deref()),
            ("default", None)
        );
        assert_eq!(env.host_ip, None);
        assert_eq!(env.api_token, None);
        let env = Env::from_lookup(|name| match name {
            "NAMESPACE" => Some("prod".into()),
            "DAPR_API_TOKEN" => Some("secret".into()),
            "APP_API_TOKEN" => Some(String::new()),
            _ => None,
        });
        assert_eq!(env.namespace(), "prod");
        assert_eq!(env.api_token.as_deref(), Some("secret"));
        assert_eq!(env.app_api_token, None, "empty counts as unset");
    }
}
