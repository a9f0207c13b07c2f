//! The component registry: which `spec.type`/`spec.version` builds which implementation.

use std::sync::Arc;

use components_core::state::StateStore;
use components_core::{ComponentError, Properties};
use components_memory::MemoryStore;
use components_postgres::PostgresStore;
use components_redis::RedisStore;
use components_sqlite::SqliteStore;

/// Creates the state store for a component's `spec.type`/`spec.version`. Registration is
/// explicit: every supported type is listed here.
pub async fn create_state_store(
    kind: &str,
    version: &str,
    props: &Properties,
) -> Result<Arc<dyn StateStore>, ComponentError> {
    let v1 = matches!(version, "" | "v1");
    Ok(match kind {
        "state.in-memory" if v1 => MemoryStore::with_sweeper(),
        "state.redis" if v1 => Arc::new(RedisStore::connect(props).await?),
        "state.postgresql" if v1 => Arc::new(PostgresStore::connect(props).await?),
        "state.sqlite" if v1 => Arc::new(SqliteStore::open(props).await?),
        _ => {
            return Err(ComponentError::UnknownType {
                kind: kind.to_string(),
                version: version.to_string(),
            });
        }
    })
}
