//! `secretstores.local.file`: secrets from a JSON file, read once at init as Dapr does.
//! Nested objects and arrays are flattened into names joined by `nestedSeparator`
//! (default `:`); with `multiValued: true` each top-level key is one secret whose keys are
//! the flattened names below it.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use components_core::secretstores::{Secret, SecretError, SecretStore};
use components_core::{Component, ComponentError, Properties};
use serde_json::Value;

pub struct FileSecretStore {
    secrets: BTreeMap<String, Secret>,
    multi_valued: bool,
}

/// Adds `value` under `name` to `out`, flattening objects and arrays.
fn flatten(name: &str, value: &Value, separator: &str, out: &mut BTreeMap<String, String>) {
    let join = |k: &str| {
        if name.is_empty() {
            k.to_string()
        } else {
            format!("{name}{separator}{k}")
        }
    };
    match value {
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| flatten(&join(k), v, separator, out)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| flatten(&join(&i.to_string()), v, separator, out)),
        Value::String(s) => {
            out.insert(name.to_string(), s.clone());
        }
        Value::Null => {
            out.insert(name.to_string(), String::new());
        }
        other => {
            out.insert(name.to_string(), other.to_string());
        }
    }
}

impl FileSecretStore {
    /// Reads and parses `secretsFile`.
    pub async fn open(props: &Properties) -> Result<Self, ComponentError> {
        let path = props
            .get("secretsFile")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                ComponentError::Metadata("missing local secrets file in metadata".into())
            })?;
        let text = tokio::fs::read(path)
            .await
            .map_err(|e| ComponentError::Metadata(format!("cannot read {path}: {e}")))?;
        let json: Value = serde_json::from_slice(&text)
            .map_err(|e| ComponentError::Metadata(format!("{path} is not valid JSON: {e}")))?;
        Self::from_json(&json, props)
    }

    fn from_json(json: &Value, props: &Properties) -> Result<Self, ComponentError> {
        let separator = props.get_or("nestedSeparator", ":");
        let multi_valued = props.flag("multiValued");
        let Value::Object(top) = json else {
            return Err(ComponentError::Metadata(
                "the secrets file must hold a JSON object".into(),
            ));
        };
        let mut secrets = BTreeMap::new();
        if multi_valued {
            for (name, value) in top {
                let mut keys = BTreeMap::new();
                match value {
                    Value::Object(_) | Value::Array(_) => flatten("", value, separator, &mut keys),
                    scalar => flatten(name, scalar, separator, &mut keys),
                }
                secrets.insert(name.clone(), keys);
            }
        } else {
            let mut flat = BTreeMap::new();
            flatten("", json, separator, &mut flat);
            for (name, value) in flat {
                secrets.insert(name.clone(), Secret::from([(name, value)]));
            }
        }
        Ok(Self {
            secrets,
            multi_valued,
        })
    }
}

impl Component for FileSecretStore {}

#[async_trait]
impl SecretStore for FileSecretStore {
    fn multiple_key_values(&self) -> bool {
        self.multi_valued
    }

    async fn get(&self, name: &str, _: &HashMap<String, String>) -> Result<Secret, SecretError> {
        self.secrets
            .get(name)
            .cloned()
            .ok_or_else(|| SecretError::NotFound(name.to_string()))
    }

    async fn bulk_get(
        &self,
        _: &HashMap<String, String>,
    ) -> Result<BTreeMap<String, Secret>, SecretError> {
        Ok(self.secrets.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Properties {
        Properties::new(pairs.iter().copied())
    }

    fn doc() -> Value {
        serde_json::json!({
            "redisPassword": "s3cret",
            "db": {"user": "admin", "port": 5432, "hosts": ["a", "b"]},
        })
    }

    #[tokio::test]
    async fn flattens_nested_values_with_the_separator() {
        let s = FileSecretStore::from_json(&doc(), &props(&[])).expect("store");
        let none = HashMap::new();
        assert_eq!(
            s.get("redisPassword", &none).await.expect("get")["redisPassword"],
            "s3cret"
        );
        assert_eq!(
            s.get("db:port", &none).await.expect("get")["db:port"],
            "5432"
        );
        assert_eq!(
            s.get("db:hosts:1", &none).await.expect("get")["db:hosts:1"],
            "b"
        );
        assert!(matches!(
            s.get("db", &none).await,
            Err(SecretError::NotFound(_))
        ));
        let dotted =
            FileSecretStore::from_json(&doc(), &props(&[("nestedSeparator", ".")])).expect("store");
        assert_eq!(
            dotted.get("db.user", &none).await.expect("get")["db.user"],
            "admin"
        );
        assert!(!dotted.multiple_key_values());
    }

    #[tokio::test]
    async fn multi_valued_secrets_are_the_top_level_keys() {
        let s =
            FileSecretStore::from_json(&doc(), &props(&[("multiValued", "true")])).expect("store");
        assert!(s.multiple_key_values());
        let db = s.get("db", &HashMap::new()).await.expect("get");
        assert_eq!(db["user"], "admin");
        assert_eq!(db["hosts:0"], "a");
        let all = s.bulk_get(&HashMap::new()).await.expect("bulk");
        assert_eq!(all["redisPassword"]["redisPassword"], "s3cret");
    }

    #[tokio::test]
    async fn refuses_a_missing_or_malformed_file() {
        assert!(FileSecretStore::open(&props(&[])).await.is_err());
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.json");
        std::fs::write(&path, "{not json").expect("write");
        let p = path.display().to_string();
        let e = FileSecretStore::open(&props(&[("secretsFile", &p)]))
            .await
            .err()
            .expect("malformed");
        assert!(e.to_string().contains("not valid JSON"), "{e}");
        assert!(FileSecretStore::from_json(&serde_json::json!([1]), &props(&[])).is_err());
    }
}
