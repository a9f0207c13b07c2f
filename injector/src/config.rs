//! The injector's own settings from its environment, with the names and defaults of
//! Dapr's injector (`SIDECAR_IMAGE`, `NAMESPACE`, `KUBE_CLUSTER_DOMAIN`, the
//! `SIDECAR_*` security settings, `ALLOWED_SERVICE_ACCOUNTS`...). Reading the trust
//! anchors file is the binary's business; this is a pure function of a lookup.

use crate::annotations::is_truthy;
use crate::container::InjectorSettings;
use crate::review::{Requesters, ReviewError};

/// Why the injector cannot start with this environment.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error(transparent)]
    Requesters(#[from] ReviewError),
}

/// Empty means true; anything else must be truthy (Dapr's `isTruthyDefaultTrue`).
fn truthy_default_true(value: Option<&str>) -> bool {
    value.is_none_or(|v| v.is_empty() || is_truthy(v))
}

/// Everything the injector reads from its environment.
#[derive(Debug, Clone)]
pub struct InjectorConfig {
    pub settings: InjectorSettings,
    pub requesters: Requesters,
    /// `DAPR_TRUST_ANCHORS_FILE`: where the binary reads the trust anchors from.
    pub trust_anchors_file: String,
}

/// Reads the injector's settings through `lookup` (the process environment, or a test's).
pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<InjectorConfig, ConfigError> {
    let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
    let image = get("SIDECAR_IMAGE").ok_or(ConfigError::Missing("SIDECAR_IMAGE"))?;
    let ns = get("NAMESPACE").ok_or(ConfigError::Missing("NAMESPACE"))?;
    let domain = get("KUBE_CLUSTER_DOMAIN").unwrap_or_else(|| "cluster.local".into());
    let settings = InjectorSettings {
        sidecar_image: image,
        image_pull_policy: get("SIDECAR_IMAGE_PULL_POLICY").unwrap_or_default(),
        control_plane_trust_domain: get("DAPR_CONTROL_PLANE_TRUST_DOMAIN")
            .unwrap_or_else(|| "cluster.local".into()),
        trust_anchors: String::new(),
        operator_address: format!("dapr-api.{ns}.svc.{domain}:443"),
        sentry_address: get("DAPR_SENTRY_ADDRESS")
            .unwrap_or_else(|| format!("dapr-sentry.{ns}.svc.{domain}:443")),
        placement_address: format!("dapr-placement-server.{ns}.svc.{domain}:50005"),
        mtls_enabled: true,
        run_as_non_root: truthy_default_true(lookup("SIDECAR_RUN_AS_NON_ROOT").as_deref()),
        read_only_root_filesystem: truthy_default_true(
            lookup("SIDECAR_READ_ONLY_ROOT_FILESYSTEM").as_deref(),
        ),
        drop_all_capabilities: get("SIDECAR_DROP_ALL_CAPABILITIES").is_some_and(|v| is_truthy(&v)),
        downward_apis: get("ENABLE_K8S_DOWNWARD_APIS").is_some_and(|v| is_truthy(&v)),
        control_plane_namespace: ns,
    };
    let requesters = Requesters::new(
        &get("ALLOWED_SERVICE_ACCOUNTS").unwrap_or_default(),
        &get("ALLOWED_SERVICE_ACCOUNTS_PREFIX_NAMES").unwrap_or_default(),
    )?;
    Ok(InjectorConfig {
        settings,
        requesters,
        trust_anchors_file: get("DAPR_TRUST_ANCHORS_FILE")
            .unwrap_or_else(|| "/var/run/secrets/dapr.io/tls/ca.crt".into()),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<InjectorConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_env(|k| map.get(k).cloned())
    }

    #[test]
    fn image_and_namespace_are_required() {
        assert_eq!(
            config(&[("NAMESPACE", "dapr-system")])
                .expect_err("refused")
                .to_string(),
            "SIDECAR_IMAGE is required"
        );
        assert_eq!(
            config(&[("SIDECAR_IMAGE", "daprd")])
                .expect_err("refused")
                .to_string(),
            "NAMESPACE is required"
        );
    }

    #[test]
    fn defaults_are_daprs() {
        let c = config(&[("SIDECAR_IMAGE", "r/daprd:1"), ("NAMESPACE", "cp")]).expect("config");
        let s = c.settings;
        assert_eq!(s.sidecar_image, "r/daprd:1");
        assert_eq!(s.control_plane_namespace, "cp");
        assert_eq!(s.control_plane_trust_domain, "cluster.local");
        assert_eq!(s.operator_address, "dapr-api.cp.svc.cluster.local:443");
        assert_eq!(s.sentry_address, "dapr-sentry.cp.svc.cluster.local:443");
        assert_eq!(
            s.placement_address,
            "dapr-placement-server.cp.svc.cluster.local:50005"
        );
        assert!(s.run_as_non_root && s.read_only_root_filesystem);
        assert!(!s.drop_all_capabilities && !s.downward_apis);
        assert_eq!(c.trust_anchors_file, "/var/run/secrets/dapr.io/tls/ca.crt");
    }

    #[test]
    fn the_environment_overrides_them() {
        let c = config(&[
            ("SIDECAR_IMAGE", "img"),
            ("NAMESPACE", "cp"),
            ("KUBE_CLUSTER_DOMAIN", "corp.local"),
            ("DAPR_SENTRY_ADDRESS", "127.0.0.1:50003"),
            ("SIDECAR_RUN_AS_NON_ROOT", "false"),
            ("SIDECAR_DROP_ALL_CAPABILITIES", "true"),
            ("SIDECAR_IMAGE_PULL_POLICY", "Always"),
            ("ALLOWED_SERVICE_ACCOUNTS", "team:deployer"),
        ])
        .expect("config");
        assert_eq!(
            c.settings.operator_address,
            "dapr-api.cp.svc.corp.local:443"
        );
        assert_eq!(c.settings.sentry_address, "127.0.0.1:50003");
        assert!(!c.settings.run_as_non_root);
        assert!(c.settings.drop_all_capabilities);
        assert_eq!(c.settings.image_pull_policy, "Always");
        assert!(
            c.requesters
                .allows("system:serviceaccount:team:deployer", &[])
        );
        assert!(
            config(&[
                ("SIDECAR_IMAGE", "i"),
                ("NAMESPACE", "n"),
                ("ALLOWED_SERVICE_ACCOUNTS", "bad")
            ])
            .is_err()
        );
    }
}
