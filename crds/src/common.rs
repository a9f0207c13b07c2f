//! Shapes shared by several Dapr resources (Dapr's `pkg/apis/common`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema::{Required, is_default};

/// One configuration entry of a component, HTTP endpoint header or exporter header.
///
/// Normally exactly one of `value`, `secretKeyRef` or `envRef` is set; which one wins is the
/// runtime's business, so all three are kept as written.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["name"]))]
pub struct NameValuePair {
    /// Key the component looks the entry up by.
    #[serde(default)]
    pub name: String,
    /// Inline value. Any JSON type is accepted (`6379`, `true`, `"x"` or a nested object) and
    /// kept as written; components receive it as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_value")]
    pub value: Option<serde_json::Value>,
    /// Resolves the value from a secret store instead of writing it in the manifest.
    #[serde(default, skip_serializing_if = "is_default")]
    pub secret_key_ref: SecretKeyRef,
    /// Resolves the value from the sidecar's environment, keeping it out of the manifest.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub env_ref: String,
}

impl NameValuePair {
    /// The inline value as components see it: a JSON string yields its contents, any other JSON
    /// value yields its JSON text (`6379`, `true`, `{"a":1}`), matching Dapr's
    /// `DynamicValue.String()`. `None` when no inline value was given.
    pub fn value_string(&self) -> Option<String> {
        self.value.as_ref().map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// Whether the value is to be fetched from a secret store rather than used inline.
    pub fn has_secret_key_ref(&self) -> bool {
        !self.secret_key_ref.name.is_empty()
    }
}

/// Points at one key of one secret in the secret store named by the owning resource's `auth`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["name"]))]
pub struct SecretKeyRef {
    /// Secret name.
    #[serde(default)]
    pub name: String,
    /// Key inside the secret; Dapr falls back to the secret name when it is empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
}

/// Which secret store resolves the `secretKeyRef`s of the owning resource. Sits beside `spec`
/// at the root of Dapr's Component and HTTPEndpoint.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["secretStore"]))]
pub struct Auth {
    /// Name of a secret store component; empty means the default store of the hosting mode.
    #[serde(default)]
    pub secret_store: String,
}

/// Client TLS material for outbound calls, each piece either inline or from a secret store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tls {
    /// Trust anchors used instead of the system roots.
    #[serde(rename = "rootCA", default, skip_serializing_if = "Option::is_none")]
    pub root_ca: Option<TlsDocument>,
    /// Client certificate (PEM) presented for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<TlsDocument>,
    /// Private key (PEM) matching `certificate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<TlsDocument>,
    /// Whether the server may ask to renegotiate; absent means `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Never"))]
    pub renegotiation: Option<Renegotiation>,
}

/// A PEM document given inline or by reference, so keys need not live in manifests.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsDocument {
    /// Inline document; schemaless in Dapr, so any JSON value is preserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_value")]
    pub value: Option<serde_json::Value>,
    /// Reference to the document in a secret store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
}

/// TLS renegotiation policy, named as Go's `crypto/tls` names it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Renegotiation {
    /// Refuse renegotiation (the safe default).
    #[default]
    Never,
    /// Allow one renegotiation per connection.
    OnceAsClient,
    /// Allow repeated renegotiation.
    FreelyAsClient,
}
