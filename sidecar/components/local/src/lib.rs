//! Local components, which need no outside service: secrets from the sidecar's
//! environment (`secretstores.local.env`) and from a JSON file (`secretstores.local.file`),
//! files under a folder (`bindings.localstorage`) and a schedule (`bindings.cron`).

mod cron;
mod env;
mod file;
mod localstorage;

use std::sync::Arc;

use components_core::Registry;
use components_core::bindings::{Binding, Bindings};
use components_core::secretstores::{SecretStore, SecretStores};

pub use cron::{Cron, Schedule};
pub use env::EnvSecretStore;
pub use file::FileSecretStore;
pub use localstorage::LocalStorage;

/// Registers this crate's backends.
pub fn register(registry: &mut Registry) {
    registry.register::<SecretStores, _>("secretstores.local.env", &["v1"], |init| async move {
        Ok(Arc::new(EnvSecretStore::new(&init.properties)) as Arc<dyn SecretStore>)
    });
    registry.register::<SecretStores, _>("secretstores.local.file", &["v1"], |init| async move {
        Ok(Arc::new(FileSecretStore::open(&init.properties).await?) as Arc<dyn SecretStore>)
    });
    registry.register::<Bindings, _>("bindings.localstorage", &["v1"], |init| async move {
        Ok(Arc::new(LocalStorage::new(&init.properties)?) as Arc<dyn Binding>)
    });
    registry.register::<Bindings, _>("bindings.cron", &["v1"], |init| async move {
        Ok(Arc::new(Cron::new(&init.name, &init.properties)?) as Arc<dyn Binding>)
    });
}
