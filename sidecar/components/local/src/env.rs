//! `secretstores.local.env`: each secret is an environment variable of the sidecar.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use components_core::secretstores::{Secret, SecretError, SecretStore};
use components_core::{Component, Properties};

/// Secrets from environment variables, optionally limited to those starting with `prefix`
/// (which is stripped from the names it returns), as Dapr's store does.
pub struct EnvSecretStore {
    prefix: String,
    /// `None` reads the process environment; tests give a fixed one.
    vars: Option<BTreeMap<String, String>>,
}

/// The sidecar's own credentials are never secrets of this store, as in Dapr.
fn readable(var: &str) -> bool {
    var != "APP_API_TOKEN" && !var.to_ascii_uppercase().starts_with("DAPR_")
}

impl EnvSecretStore {
    pub fn new(props: &Properties) -> Self {
        Self {
            prefix: props.get_or("prefix", "").to_string(),
            vars: None,
        }
    }

    /// Reads `vars` instead of the process environment.
    pub fn with_vars(mut self, vars: BTreeMap<String, String>) -> Self {
        self.vars = Some(vars);
        self
    }

    fn var(&self, name: &str) -> Option<String> {
        match &self.vars {
            Some(vars) => vars.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
    }

    fn all(&self) -> Vec<(String, String)> {
        match &self.vars {
            Some(vars) => vars.clone().into_iter().collect(),
            None => std::env::vars().collect(),
        }
    }
}

impl Component for EnvSecretStore {}

#[async_trait]
impl SecretStore for EnvSecretStore {
    async fn get(&self, name: &str, _: &HashMap<String, String>) -> Result<Secret, SecretError> {
        let var = format!("{}{name}", self.prefix);
        // An unset variable reads as empty, as Go's os.Getenv does in Dapr's store.
        let value = if readable(&var) {
            self.var(&var).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Secret::from([(name.to_string(), value)]))
    }

    async fn bulk_get(
        &self,
        _: &HashMap<String, String>,
    ) -> Result<BTreeMap<String, Secret>, SecretError> {
        Ok(self
            .all()
            .into_iter()
            .filter(|(k, _)| readable(k))
            .filter_map(|(k, v)| {
                let name = k.strip_prefix(self.prefix.as_str())?.to_string();
                (!name.is_empty()).then(|| (name.clone(), Secret::from([(name, v)])))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(prefix: &str) -> EnvSecretStore {
        EnvSecretStore::new(&Properties::new([("prefix", prefix)])).with_vars(BTreeMap::from([
            ("MYAPP_X".to_string(), "one".to_string()),
            ("OTHER".to_string(), "two".to_string()),
            ("DAPR_API_TOKEN".to_string(), "secret".to_string()),
            ("APP_API_TOKEN".to_string(), "secret".to_string()),
        ]))
    }

    #[tokio::test]
    async fn reads_variables_under_the_prefix_without_it() {
        let s = store("MYAPP_");
        let got = s.get("X", &HashMap::new()).await.expect("get");
        assert_eq!(got, Secret::from([("X".to_string(), "one".to_string())]));
        assert_eq!(
            s.get("OTHER", &HashMap::new()).await.expect("get")["OTHER"],
            ""
        );
        let all = s.bulk_get(&HashMap::new()).await.expect("bulk");
        assert_eq!(all.keys().collect::<Vec<_>>(), ["X"]);
    }

    #[tokio::test]
    async fn never_reveals_the_sidecars_own_tokens() {
        let s = store("");
        for name in ["DAPR_API_TOKEN", "APP_API_TOKEN"] {
            assert_eq!(s.get(name, &HashMap::new()).await.expect("get")[name], "");
        }
        let all = s.bulk_get(&HashMap::new()).await.expect("bulk");
        assert_eq!(all.keys().collect::<Vec<_>>(), ["MYAPP_X", "OTHER"]);
    }
}
