//! In-memory components: the embedded default of a sidecar started with no resources, so
//! that a newcomer can use state within seconds. Never the only implementation of a family.

mod pubsub;
mod state;

use std::sync::Arc;

use components_core::Registry;
use components_core::pubsub::{PubSub, PubSubs};
use components_core::state::{State, StateStore};

pub use pubsub::MemoryPubSub;
pub use state::MemoryStore;

/// Registers this crate's backends.
pub fn register(registry: &mut Registry) {
    registry.register::<State, _>("state.in-memory", &["v1"], |_| async {
        Ok(MemoryStore::with_sweeper() as Arc<dyn StateStore>)
    });
    registry.register::<PubSubs, _>("pubsub.in-memory", &["v1"], |_| async {
        Ok(Arc::new(MemoryPubSub::new()) as Arc<dyn PubSub>)
    });
}
