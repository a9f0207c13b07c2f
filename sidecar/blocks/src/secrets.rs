//! The secrets building block: the loaded secret stores, which the runtime uses to resolve
//! components' `secretKeyRef`s (and which the secrets API will serve).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use components_core::secretstores::SecretStore;

/// The loaded secret stores by component name. Swapped whole on change, so readers take
/// no lock.
#[derive(Default)]
pub struct SecretsBlock {
    stores: ArcSwap<HashMap<String, Arc<dyn SecretStore>>>,
}

impl SecretsBlock {
    /// The store called `name`, if loaded.
    pub fn store(&self, name: &str) -> Option<Arc<dyn SecretStore>> {
        self.stores.load().get(name).cloned()
    }

    /// Adds or replaces a store while the sidecar runs.
    pub fn upsert(&self, name: &str, store: Arc<dyn SecretStore>) {
        self.stores.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.insert(name.to_string(), store.clone());
            next
        });
    }

    /// Removes a store; returns whether it existed.
    pub fn remove(&self, name: &str) -> bool {
        let mut existed = false;
        self.stores.rcu(|current| {
            let mut next = HashMap::clone(current);
            existed = next.remove(name).is_some();
            next
        });
        existed
    }
}
