//! The secrets building block: the loaded secret stores, which the runtime uses to resolve
//! components' `secretKeyRef`s (and which the secrets API will serve).

use std::sync::Arc;

use components_core::secretstores::SecretStore;

use crate::table::Table;

/// The loaded secret stores by component name.
#[derive(Default)]
pub struct SecretsBlock {
    stores: Table<Arc<dyn SecretStore>>,
}

impl SecretsBlock {
    /// The store called `name`, if loaded.
    pub fn store(&self, name: &str) -> Option<Arc<dyn SecretStore>> {
        self.stores.get(name)
    }

    /// Adds or replaces a store while the sidecar runs.
    pub fn upsert(&self, name: &str, store: Arc<dyn SecretStore>) {
        self.stores.upsert(name, store);
    }

    /// Removes a store; returns whether it existed.
    pub fn remove(&self, name: &str) -> bool {
        self.stores.remove(name)
    }
}
