//! Building one component from its document, as Dapr does: metadata resolved (`envRef`,
//! `secretKeyRef` through the component's secret store), then the backend created by the
//! registry within `initTimeout`.

use std::time::Duration;

use base64::Engine;
use blocks::secrets::SecretsBlock;
use components_core::{ComponentError, Init, Live, Properties, Registry};
use thiserror::Error;

use super::hosts::HostError;
use crate::config::env_var;
use crate::resources::{Component, DaprResource};

/// Dapr's default `initTimeout`.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a component could not be built.
#[derive(Debug, Error)]
pub enum InitError {
    /// The registry could not build it, or the backend refused.
    #[error(transparent)]
    Component(#[from] ComponentError),
    /// The building block refused it.
    #[error(transparent)]
    Host(#[from] HostError),
    /// No building block serves its family.
    #[error("no building block serves {family} components")]
    Unhosted { family: &'static str },
    /// Creating it took longer than `initTimeout`.
    #[error("init timeout after {}s", .0.as_secs_f64())]
    Timeout(Duration),
}

/// `name (type/version)`, as Dapr's logs name a component.
pub fn log_name(c: &Component) -> String {
    let spec = &c.spec.spec;
    if spec.version.is_empty() {
        format!("{} ({})", c.name(), spec.type_)
    } else {
        format!("{} ({}/{})", c.name(), spec.type_, spec.version)
    }
}

/// Environment variables a component may not read through `envRef`, as in Dapr.
fn env_ref_allowed(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(' ')
        && name != "APP_API_TOKEN"
        && !name.to_ascii_uppercase().starts_with("DAPR_")
}

/// The outcome of resolving a component's metadata.
pub enum Resolved {
    Ready(Properties),
    /// It waits for the named secret store to load, as Dapr parks such components.
    Parked(String),
}

/// Resolves `spec.metadata`. In Kubernetes mode with the Kubernetes secret store (the
/// default) the operator has already put each secret in, base64-encoded; otherwise a
/// `secretKeyRef` is read from the secret store named in `auth.secretStore`.
pub async fn resolve_metadata(c: &Component, kubernetes: bool, secrets: &SecretsBlock) -> Resolved {
    let store_name = c.spec.auth.secret_store.as_str();
    let operator_resolved = kubernetes && matches!(store_name, "" | "kubernetes");
    let items = c.name_value_pairs();
    let mut pairs = Vec::with_capacity(items.len());
    for item in items {
        if item.has_secret_key_ref() {
            let value = if operator_resolved {
                let decoded = item
                    .value_string()
                    .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                    .and_then(|b| String::from_utf8(b).ok());
                match decoded {
                    Some(v) => v,
                    // The operator could not read the Secret: the component waits, as
                    // Dapr's does, until an update brings the value.
                    None => return Resolved::Parked("kubernetes".to_string()),
                }
            } else {
                let Some(store) = secrets.store(store_name) else {
                    return Resolved::Parked(store_name.to_string());
                };
                let reference = &item.secret_key_ref;
                let key = if reference.key.is_empty() {
                    &reference.name
                } else {
                    &reference.key
                };
                match store.get(&reference.name, &Default::default()).await {
                    Ok(secret) => secret.get(key).cloned().unwrap_or_default(),
                    Err(e) => {
                        // As Dapr: the value stays empty and the component still starts.
                        tracing::warn!(component = %c.name(), "Error getting secret: {e}");
                        String::new()
                    }
                }
            };
            pairs.push((item.name.clone(), value));
            continue;
        }
        let value = match (item.value_string(), item.env_ref.as_str()) {
            (Some(v), _) => v,
            (None, "") => String::new(),
            (None, var) if env_ref_allowed(var) => env_var(var).unwrap_or_default(),
            (None, var) => {
                tracing::warn!(
                    "Component {} references an env variable that isn't allowed: {var}",
                    c.name()
                );
                String::new()
            }
        };
        pairs.push((item.name.clone(), value));
    }
    Resolved::Ready(Properties::new(pairs))
}

/// Creates the backend within the component's `initTimeout` (Dapr's 5 s when unset or
/// unreadable). A creation that runs out of time is abandoned.
pub async fn create(registry: &Registry, c: &Component, init: Init) -> Result<Live, InitError> {
    let spec = &c.spec.spec;
    // A strict Go duration; anything else (a bare number included) means the default.
    let timeout = kit::duration::go(&spec.init_timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_INIT_TIMEOUT);
    match tokio::time::timeout(timeout, registry.create(&spec.type_, &spec.version, init)).await {
        Err(_) => Err(InitError::Timeout(timeout)),
        Ok(made) => Ok(made?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_refs_cannot_read_dapr_secrets() {
        assert!(env_ref_allowed("REDIS_HOST"));
        for denied in ["", "DAPR_API_TOKEN", "dapr_x", "APP_API_TOKEN", "A B"] {
            assert!(!env_ref_allowed(denied), "{denied}");
        }
    }
}
