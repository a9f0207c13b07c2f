//! One resource document — a YAML document in standalone mode, the operator's JSON in
//! Kubernetes mode — turned into its `crds` type.
//!
//! The `crds` types are exact about field types, which the API server guarantees for objects it
//! stores. Hand-written YAML is looser, and the sidecar has always accepted it, so a document is
//! normalised against its CRD's schema before it is deserialised:
//! - a missing or `null` `metadata` or `spec` counts as empty (a Configuration may leave out its
//!   `spec`, which the `crds` type would otherwise reject);
//! - an explicit `null` for a declared property counts as absent, as the API server prunes it;
//! - a number or boolean where the schema wants a string becomes its text (`httpStatusCodes:
//!   503`, `samplingRate: 1`), as YAML does not tell `503` from `"503"` for the author;
//! - a declared property's name matches whatever its case (`baseURL` is `baseUrl`), as Go's
//!   JSON decoder, which Dapr decodes its manifests with, matches them; a key that is exactly
//!   a property's name is preferred, and free-form maps (labels, metadata values) keep
//!   their keys.
//!
//! Then come the checks the lenient types cannot express (a Component needs a name and a
//! type, ...), so a document the sidecar cannot use is refused with a reason.

use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::configuration::Configuration;
use crate::{Component, HTTPEndpoint, NameValuePair, Resiliency};

/// Why a document did not become its resource. The text is what the sidecar logs when it
/// skips the document.
#[derive(Debug, Error)]
pub enum DocumentError {
    /// Not JSON, or not the shape of the resource's type; serde's message says where.
    #[error(transparent)]
    Undecodable(#[from] serde_json::Error),
    /// A field the sidecar cannot do without is missing or empty (`spec.type`,
    /// `spec.metadata[2].name`, ...).
    #[error("{field} is required")]
    Required {
        /// Where the field is, as the message names it.
        field: String,
    },
}

impl DocumentError {
    fn required(field: impl Into<String>) -> Self {
        Self::Required {
            field: field.into(),
        }
    }
}

/// A Dapr resource the sidecar reads, and what it needs to know to decode one.
pub trait DaprResource: DeserializeOwned {
    /// The `kind` its documents carry.
    const KIND: &'static str;

    /// `metadata.name`, empty when unset.
    fn name(&self) -> &str;

    /// The `openAPIV3Schema` of its CRD, as JSON.
    fn schema() -> &'static Value;

    /// Refuses a decoded resource the sidecar cannot use.
    fn check(&self) -> Result<(), DocumentError> {
        Ok(())
    }
}

/// Decodes one document (already parsed into JSON values) into `T`; the error is the reason.
pub fn decode<T: DaprResource>(mut doc: Value) -> Result<T, DocumentError> {
    if let Some(root) = doc.as_object_mut() {
        if let Some(props) = T::schema().get("properties").and_then(Value::as_object) {
            fold_case(root, props);
        }
        for key in ["metadata", "spec"] {
            if root.get(key).is_none_or(Value::is_null) {
                root.insert(key.into(), Value::Object(Map::new()));
            }
        }
    }
    conform(&mut doc, T::schema());
    let resource: T = serde_json::from_value(doc)?;
    resource.check()?;
    Ok(resource)
}

/// [`decode`] for a JSON document, as the operator sends them.
pub fn decode_json<T: DaprResource>(bytes: &[u8]) -> Result<T, DocumentError> {
    decode(serde_json::from_slice(bytes)?)
}

/// Brings `value` closer to `schema`: drops `null`s of declared properties and turns scalars
/// into the strings the schema asks for. Anything else is left for deserialisation to judge.
fn conform(value: &mut Value, schema: &Value) {
    match value {
        Value::Bool(_) | Value::Number(_)
            if schema.get("type").and_then(Value::as_str) == Some("string") =>
        {
            *value = Value::String(value.to_string());
        }
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                fold_case(map, props);
                map.retain(|k, v| !(v.is_null() && props.contains_key(k)));
                for (k, v) in map.iter_mut() {
                    if let Some(s) = props.get(k) {
                        conform(v, s);
                    }
                }
            } else if let Some(s) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                map.values_mut().for_each(|v| conform(v, s));
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                items.iter_mut().for_each(|v| conform(v, s));
            }
        }
        _ => {}
    }
}

/// Renames each key that is a declared property in another case to the property's name,
/// unless the exact name is there too. Nothing is allocated when every key matches.
fn fold_case(map: &mut Map<String, Value>, props: &Map<String, Value>) {
    let renames: Vec<(String, String)> = map
        .keys()
        .filter(|k| !props.contains_key(k.as_str()))
        .filter_map(|k| {
            let prop = props.keys().find(|p| p.eq_ignore_ascii_case(k))?;
            (!map.contains_key(prop)).then(|| (k.clone(), prop.clone()))
        })
        .collect();
    for (from, to) in renames {
        if let Some(v) = map.remove(&from) {
            map.insert(to, v);
        }
    }
}

/// The `openAPIV3Schema` of a CRD's first version, read from the chart's committed CRD
/// YAML (which a test keeps equal to what the `crds` types generate). Reading the YAML,
/// rather than generating the CRD at run time, keeps schema generation out of the
/// sidecar's binary and memory.
fn root_schema(crd_yaml: &str) -> Value {
    let crd: Value = serde_saphyr::from_str(crd_yaml).unwrap_or_default();
    crd.pointer("/spec/versions/0/schema/openAPIV3Schema")
        .cloned()
        .unwrap_or_default()
}

/// The schema of one version of a CRD serving several (`Subscription`).
fn version_schema(crd_yaml: &str, version: &str) -> Value {
    let crd: Value = serde_saphyr::from_str(crd_yaml).unwrap_or_default();
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
        })
        .and_then(|v| v.pointer("/schema/openAPIV3Schema"))
        .cloned()
        .unwrap_or_default()
}

fn name_of(name: &Option<String>) -> &str {
    name.as_deref().unwrap_or("")
}

fn check_pairs(pairs: &[NameValuePair], path: &str) -> Result<(), DocumentError> {
    for (i, p) in pairs.iter().enumerate() {
        if p.name.is_empty() {
            return Err(DocumentError::required(format!("{path}[{i}].name")));
        }
        if !p.secret_key_ref.key.is_empty() && !p.has_secret_key_ref() {
            return Err(DocumentError::required(format!(
                "{path}[{i}].secretKeyRef.name"
            )));
        }
    }
    Ok(())
}

macro_rules! schema_of {
    ($file:literal) => {{
        static SCHEMA: OnceLock<Value> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            root_schema(include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../charts/dapr/crds/",
                $file
            )))
        })
    }};
}

macro_rules! version_schema_of {
    ($file:literal, $version:literal) => {{
        static SCHEMA: OnceLock<Value> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            version_schema(
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../charts/dapr/crds/",
                    $file
                )),
                $version,
            )
        })
    }};
}

impl DaprResource for crate::subscription::v1alpha1::Subscription {
    const KIND: &'static str = "Subscription";

    fn name(&self) -> &str {
        name_of(&self.metadata.name)
    }

    fn schema() -> &'static Value {
        version_schema_of!("subscriptions.yaml", "v1alpha1")
    }

    fn check(&self) -> Result<(), DocumentError> {
        check_subscription(&self.spec.spec.pubsubname, &self.spec.spec.topic)
    }
}

impl DaprResource for crate::subscription::v2alpha1::Subscription {
    const KIND: &'static str = "Subscription";

    fn name(&self) -> &str {
        name_of(&self.metadata.name)
    }

    fn schema() -> &'static Value {
        version_schema_of!("subscriptions.yaml", "v2alpha1")
    }

    fn check(&self) -> Result<(), DocumentError> {
        check_subscription(&self.spec.spec.pubsubname, &self.spec.spec.topic)
    }
}

/// A subscription names its pub/sub and topic, or it cannot open anything.
fn check_subscription(pubsub: &str, topic: &str) -> Result<(), DocumentError> {
    if pubsub.is_empty() {
        return Err(DocumentError::required("spec.pubsubname"));
    }
    if topic.is_empty() {
        return Err(DocumentError::required("spec.topic"));
    }
    Ok(())
}

impl DaprResource for Component {
    const KIND: &'static str = "Component";

    fn name(&self) -> &str {
        name_of(&self.metadata.name)
    }

    fn schema() -> &'static Value {
        schema_of!("components.yaml")
    }

    fn check(&self) -> Result<(), DocumentError> {
        if self.name().is_empty() {
            return Err(DocumentError::required("metadata.name"));
        }
        if self.spec.spec.type_.is_empty() {
            return Err(DocumentError::required("spec.type"));
        }
        check_pairs(&self.spec.spec.metadata, "spec.metadata")
    }
}

impl DaprResource for HTTPEndpoint {
    const KIND: &'static str = "HTTPEndpoint";

    fn name(&self) -> &str {
        name_of(&self.metadata.name)
    }

    fn schema() -> &'static Value {
        schema_of!("httpendpoints.yaml")
    }

    fn check(&self) -> Result<(), DocumentError> {
        if self.spec.spec.base_url.is_empty() {
            return Err(DocumentError::required("spec.baseUrl"));
        }
        check_pairs(&self.spec.spec.headers, "spec.headers")
    }
}

impl DaprResource for Resiliency {
    const KIND: &'static str = "Resiliency";

    fn name(&self) -> &str {
        name_of(&self.metadata.name)
    }

    fn schema() -> &'static Value {
        schema_of!("resiliency.yaml")
    }
}

impl DaprResource for Configuration {
    const KIND: &'static str = "Configuration";

    fn name(&self) -> &str {
        name_of(&self.metadata.name)
    }

    fn schema() -> &'static Value {
        schema_of!("configurations.yaml")
    }

    fn check(&self) -> Result<(), DocumentError> {
        match self.spec.features.iter().position(|f| f.name.is_empty()) {
            Some(i) => Err(DocumentError::required(format!("spec.features[{i}].name"))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_saphyr::from_str(text).expect("valid YAML")
    }

    #[test]
    fn property_names_match_in_any_case_as_in_go() {
        let e: HTTPEndpoint = decode(yaml(
            "kind: HTTPEndpoint\nmetadata: {name: e}\nspec:\n  baseURL: http://x:1\n  Headers:\n  - {NAME: a, Value: b}\n",
        ))
        .expect("decodes");
        assert_eq!(e.spec.spec.base_url, "http://x:1");
        assert_eq!(
            (
                e.spec.spec.headers[0].name.as_str(),
                e.spec.spec.headers[0].value_string()
            ),
            ("a", Some("b".to_string()))
        );
        let c: Component = decode(yaml(
            "kind: Component\nmetadata: {name: c}\nSpec:\n  TYPE: state.redis\n  Version: v1\n  metadata:\n  - {name: redisHost, value: x}\n",
        ))
        .expect("decodes");
        assert_eq!(
            (c.spec.spec.type_.as_str(), c.spec.spec.version.as_str()),
            ("state.redis", "v1")
        );
        // The exact name wins over another case of it.
        let e: HTTPEndpoint = decode(yaml(
            "kind: HTTPEndpoint\nmetadata: {name: e}\nspec: {BASEURL: http://other:1, baseUrl: http://x:1}\n",
        ))
        .expect("decodes");
        assert_eq!(e.spec.spec.base_url, "http://x:1");
    }

    #[test]
    fn scalars_become_the_strings_the_schema_wants() {
        let r: Resiliency = decode(yaml(
            "kind: Resiliency\nmetadata: {name: r}\nspec:\n  policies:\n    timeouts: {t: 5}\n    retries:\n      r:\n        maxRetries: 3\n        matching: {httpStatusCodes: 503, gRPCStatusCodes: 14}\n  targets:\n    apps:\n      a: {retry: r, timeout: t}\n",
        ))
        .expect("decodes");
        let p = &r.spec.spec.policies;
        assert_eq!(p.timeouts["t"], "5");
        let m = p.retries["r"].matching.clone().expect("matching");
        assert_eq!(
            (m.http_status_codes.as_str(), m.grpc_status_codes.as_str()),
            ("503", "14")
        );
        assert_eq!(
            p.retries["r"].max_retries,
            Some(3),
            "integers stay integers"
        );
        let c: Configuration = decode(yaml(
            "kind: Configuration\nspec:\n  tracing: {samplingRate: 1}\n",
        ))
        .expect("decodes");
        assert_eq!(c.spec.tracing.expect("tracing").sampling_rate, "1");
    }

    #[test]
    fn free_form_values_are_kept_as_written() {
        let c: Component = decode(yaml(
            "kind: Component\nmetadata: {name: c}\nspec:\n  type: state.redis\n  metadata:\n  - {name: port, value: 6379}\n  - {name: flag, value: true}\n  - {name: obj, value: {a: 1}}\n  - {name: none, value: ~}\n",
        ))
        .expect("decodes");
        let values: Vec<_> = c
            .spec
            .spec
            .metadata
            .iter()
            .map(NameValuePair::value_string)
            .collect();
        assert_eq!(
            values,
            [
                Some("6379".into()),
                Some("true".into()),
                Some(r#"{"a":1}"#.into()),
                None
            ]
        );
    }

    #[test]
    fn missing_and_null_parts_count_as_empty() {
        let c: Configuration = decode(yaml("kind: Configuration\n")).expect("no spec");
        assert_eq!(c, Configuration::default());
        let c: Configuration = decode(yaml("kind: Configuration\nspec:\n")).expect("null spec");
        assert_eq!(c.spec, Default::default());
        let c: Component = decode(yaml(
            "kind: Component\nmetadata: {name: c}\nspec:\n  type: state.redis\n  metadata:\n  initTimeout: ~\nauth: ~\nscopes: ~\n",
        ))
        .expect("nulls are absent");
        assert!(c.spec.spec.metadata.is_empty() && c.spec.scopes.is_empty());
    }

    #[test]
    fn refuses_what_the_sidecar_cannot_use() {
        let reason = |text: &str| -> String {
            decode::<Component>(yaml(text))
                .expect_err("refused")
                .to_string()
        };
        assert!(
            reason("kind: Component\nmetadata: {}\nspec: {type: x}\n").contains("metadata.name")
        );
        assert!(reason("kind: Component\nmetadata: {name: c}\n").contains("spec.type"));
        assert!(
            reason(
                "kind: Component\nmetadata: {name: c}\nspec: {type: x, metadata: [{value: 1}]}\n"
            )
            .contains("spec.metadata[0].name")
        );
        assert!(
            reason("kind: Component\nmetadata: {name: c}\nspec: {type: x, metadata: [{name: a, secretKeyRef: {key: k}}]}\n")
                .contains("secretKeyRef.name")
        );
        assert!(
            reason("kind: Component\nmetadata: {name: c}\nspec: {type: [x]}\n")
                .contains("invalid type")
        );
        let e = decode::<HTTPEndpoint>(yaml("kind: HTTPEndpoint\nmetadata: {name: e}\nspec: {}\n"));
        assert!(e.expect_err("refused").to_string().contains("spec.baseUrl"));
        let c = decode::<Configuration>(yaml(
            "kind: Configuration\nspec: {features: [{enabled: true}]}\n",
        ));
        assert!(
            c.expect_err("refused")
                .to_string()
                .contains("spec.features[0].name")
        );
        assert!(decode_json::<Component>(b"{not json").is_err());
    }

    #[test]
    fn errors_say_which_kind_of_failure() {
        let e = decode_json::<Component>(b"{not json").expect_err("refused");
        assert!(matches!(e, DocumentError::Undecodable(_)), "{e:?}");
        let e = decode::<Component>(yaml("kind: Component\nmetadata: {name: c}\n"))
            .expect_err("refused");
        assert!(
            matches!(&e, DocumentError::Required { field } if field == "spec.type"),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "spec.type is required");
    }

    #[test]
    fn operator_json_keeps_the_resource_version() {
        let c: Component = decode_json(
            br#"{"apiVersion":"dapr.io/v1alpha1","kind":"Component","metadata":{"name":"c","resourceVersion":"42"},"spec":{"type":"state.redis","version":"v1"},"auth":{"secretStore":"kubernetes"}}"#,
        )
        .expect("decodes");
        assert_eq!(c.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(c.spec.auth.secret_store, "kubernetes");
    }
}
