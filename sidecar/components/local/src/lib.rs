//! Local components, for development: secrets from the sidecar's environment
//! (`secretstores.local.env`) and from a JSON file (`secretstores.local.file`).

mod env;
mod file;

use std::sync::Arc;

use components_core::Registry;
use components_core::secretstores::{SecretStore, SecretStores};

pub use env::EnvSecretStore;
pub use file::FileSecretStore;

/// Registers this crate's backends.
pub fn register(registry: &mut Registry) {
    registry.register::<SecretStores, _>("secretstores.local.env", &["v1"], |init| async move {
        Ok(Arc::new(EnvSecretStore::new(&init.properties)) as Arc<dyn SecretStore>)
    });
    registry.register::<SecretStores, _>("secretstores.local.file", &["v1"], |init| async move {
        Ok(Arc::new(FileSecretStore::open(&init.properties).await?) as Arc<dyn SecretStore>)
    });
}
