//! The control plane's own Configuration (`daprsystem` in the injector's namespace, which
//! the chart installs from `global.mtls.enabled`), followed as Dapr's injector reads it:
//! whether the sidecars it adds run with `--enable-mtls`. Missing or unreadable, mTLS
//! stays on.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use kube::Api;
use kube::api::{ApiResource, DynamicObject};

use crate::container::InjectorSettings;

/// The Configuration's name, as in Dapr.
pub const NAME: &str = "daprsystem";

/// `spec.mtls.enabled` of a Configuration; absent means on.
pub fn mtls_enabled(config: &serde_json::Value) -> bool {
    config
        .pointer("/spec/mtls/enabled")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(true)
}

fn resource() -> ApiResource {
    ApiResource {
        group: "dapr.io".into(),
        version: "v1alpha1".into(),
        api_version: "dapr.io/v1alpha1".into(),
        kind: "Configuration".into(),
        plural: "configurations".into(),
    }
}

/// Reads the Configuration every `every` and swaps the settings when mTLS changes.
pub async fn follow(
    client: kube::Client,
    namespace: String,
    settings: Arc<ArcSwap<InjectorSettings>>,
    every: Duration,
) -> Result<(), std::io::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client, &namespace, &resource());
    let mut failing = false;
    loop {
        match api.get_opt(NAME).await {
            Ok(found) => {
                failing = false;
                let on = found.is_none_or(|c| mtls_enabled(&c.data));
                let current = settings.load();
                if current.mtls_enabled != on {
                    let mut next = InjectorSettings::clone(&current);
                    next.mtls_enabled = on;
                    settings.store(Arc::new(next));
                    tracing::info!("Configuration {NAME}: sidecars get mTLS {on}");
                }
            }
            Err(e) if !failing => {
                tracing::warn!("could not read Configuration {NAME}: {e}");
                failing = true;
            }
            Err(e) => tracing::debug!("could not read Configuration {NAME}: {e}"),
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn mtls_is_on_unless_the_configuration_turns_it_off() {
        assert!(mtls_enabled(&json!({})));
        assert!(mtls_enabled(&json!({"spec": {"mtls": {"enabled": true}}})));
        assert!(!mtls_enabled(
            &json!({"spec": {"mtls": {"enabled": false}}})
        ));
    }
}
