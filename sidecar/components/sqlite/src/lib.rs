//! SQLite components: `state.sqlite` and `nameresolution.sqlite`, sharing one way of
//! opening a database file.

mod nameresolution;
mod open;
mod state;

use std::sync::Arc;

use components_core::Registry;
use components_core::nameresolution::Resolver;
use components_core::state::{State, StateStore};

pub use nameresolution::SqliteResolver;
pub use state::SqliteStore;

/// Registers this crate's backends.
pub fn register(registry: &mut Registry) {
    registry.register::<State, _>("state.sqlite", &["v1"], |init| async move {
        Ok(Arc::new(SqliteStore::open(&init.properties).await?) as Arc<dyn StateStore>)
    });
    registry.register_resolver("sqlite", |init| async move {
        Ok(
            Arc::new(SqliteResolver::start(&init.properties, init.instance).await?)
                as Arc<dyn Resolver>,
        )
    });
}
