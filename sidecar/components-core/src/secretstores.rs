//! The secret store contract: what the runtime asks of a store to resolve a component's
//! `secretKeyRef`s, and what the secrets API will ask of it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use thiserror::Error;

use crate::{Component, Family};

/// One secret: a value per key. Single-valued stores answer `{name: value}`.
pub type Secret = BTreeMap<String, String>;

/// Why a store could not answer.
#[derive(Debug, Error)]
pub enum SecretError {
    /// No secret of that name.
    #[error("secret {0} not found")]
    NotFound(String),
    /// The backend failed.
    #[error("{0}")]
    Backend(String),
}

/// A secret store backend.
#[async_trait]
pub trait SecretStore: Component {
    /// Whether a secret may hold several keys (`MULTIPLE_KEY_VALUES_PER_SECRET`).
    fn multiple_key_values(&self) -> bool {
        false
    }

    /// The secret called `name`.
    async fn get(
        &self,
        name: &str,
        metadata: &HashMap<String, String>,
    ) -> Result<Secret, SecretError>;

    /// Every secret the store holds, by name.
    async fn bulk_get(
        &self,
        metadata: &HashMap<String, String>,
    ) -> Result<BTreeMap<String, Secret>, SecretError>;
}

/// The `secretstores` family.
pub struct SecretStores;

impl Family for SecretStores {
    const NAME: &'static str = "secretstores";
    type Api = dyn SecretStore;

    fn capabilities(api: &Self::Api) -> Vec<String> {
        if api.multiple_key_values() {
            vec!["MULTIPLE_KEY_VALUES_PER_SECRET".to_string()]
        } else {
            Vec::new()
        }
    }

    fn lifecycle(api: Arc<Self::Api>) -> Arc<dyn Component> {
        api
    }
}
