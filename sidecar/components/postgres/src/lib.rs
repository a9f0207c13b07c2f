//! PostgreSQL components (`state.postgresql` v1), with Dapr's table layout and migrations.

mod state;

use std::sync::Arc;

use components_core::Registry;
use components_core::state::{State, StateStore};

pub use state::PostgresStore;

/// Registers this crate's backends. Only v1, Dapr's original table layout, is built.
pub fn register(registry: &mut Registry) {
    registry.register::<State, _>("state.postgresql", &["v1"], |init| async move {
        Ok(Arc::new(PostgresStore::connect(&init.properties).await?) as Arc<dyn StateStore>)
    });
}
