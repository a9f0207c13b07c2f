//! Redis components (`state.redis`, `pubsub.redis`), with Dapr's data layout so that a Go
//! sidecar and this one can share a database.

mod connection;
mod pubsub;
mod state;

use std::sync::Arc;

use components_core::Registry;
use components_core::pubsub::{PubSub, PubSubs};
use components_core::state::{State, StateStore};

pub use pubsub::RedisPubSub;
pub use state::RedisStore;

/// Registers this crate's backends.
pub fn register(registry: &mut Registry) {
    registry.register::<State, _>("state.redis", &["v1"], |init| async move {
        Ok(Arc::new(RedisStore::connect(&init.properties).await?) as Arc<dyn StateStore>)
    });
    registry.register::<PubSubs, _>("pubsub.redis", &["v1"], |init| async move {
        let pubsub = RedisPubSub::connect(&init.properties, Some(&init.app_id)).await?;
        Ok(Arc::new(pubsub) as Arc<dyn PubSub>)
    });
}
