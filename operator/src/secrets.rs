//! `secretKeyRef`s that point at the Kubernetes secret store are resolved by the operator
//! before a Component leaves it, as Dapr does: the sidecar never needs read access to
//! Secrets. The value travels base64-encoded (Dapr's wire convention; the sidecar decodes
//! it), so binary secrets survive the JSON string.

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject};
use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SecretError {
    #[error("secret {name:?} not found in namespace {namespace:?}")]
    NotFound { namespace: String, name: String },
    #[error("secret {name:?} has no key {key:?}")]
    MissingKey { name: String, key: String },
    #[error("reading secret {name:?}: {source}")]
    Api {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Whether the component's secrets live in the Kubernetes secret store (the default).
fn uses_kubernetes_store(component: &Value) -> bool {
    match component
        .pointer("/auth/secretStore")
        .and_then(Value::as_str)
    {
        None | Some("") | Some("kubernetes") => true,
        Some(_) => false,
    }
}

/// The component's JSON with every resolvable `secretKeyRef` filled in, and the problems
/// met on the way (each leaves its item unresolved, so the sidecar parks the component
/// rather than starting it with an empty password).
pub async fn resolve(
    client: &kube::Client,
    component: &DynamicObject,
) -> (Value, Vec<SecretError>) {
    let namespace = component.metadata.namespace.clone().unwrap_or_default();
    let mut json = serde_json::to_value(component).unwrap_or(Value::Null);
    let mut problems = Vec::new();
    if !uses_kubernetes_store(&json) {
        return (json, problems);
    }
    let Some(items) = json
        .pointer_mut("/spec/metadata")
        .and_then(Value::as_array_mut)
    else {
        return (json, problems);
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    for item in items {
        let Some(reference) = item.get("secretKeyRef") else {
            continue;
        };
        let name = reference
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            continue;
        }
        // Dapr's default key is the secret's name.
        let key = reference
            .get("key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .unwrap_or(&name)
            .to_string();
        let secret = match secrets.get_opt(&name).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                problems.push(SecretError::NotFound {
                    namespace: namespace.clone(),
                    name,
                });
                continue;
            }
            Err(source) => {
                problems.push(SecretError::Api { name, source });
                continue;
            }
        };
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&key))
            .map(|b| b.0.clone())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get(&key))
                    .map(|s| s.clone().into_bytes())
            });
        match bytes {
            Some(b) => {
                if let Some(obj) = item.as_object_mut() {
                    obj.insert(
                        "value".into(),
                        Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
                    );
                }
            }
            None => problems.push(SecretError::MissingKey { name, key }),
        }
    }
    (json, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_kubernetes_store_is_resolved_here() {
        assert!(uses_kubernetes_store(&json!({})));
        assert!(uses_kubernetes_store(
            &json!({"auth": {"secretStore": "kubernetes"}})
        ));
        assert!(!uses_kubernetes_store(
            &json!({"auth": {"secretStore": "vault"}})
        ));
    }
}
