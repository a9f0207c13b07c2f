//! The component registry: which `spec.type`/`spec.version` builds which implementation.

use std::sync::Arc;

use thiserror::Error;

use super::Properties;
use super::state::{MemoryStore, PostgresStore, RedisStore, SqliteStore, StateStore};

/// Why a component could not be created; reported with the component's name at startup.
#[derive(Debug, Error)]
pub enum ComponentError {
    #[error("unknown component type {kind}/{version}")]
    UnknownType { kind: String, version: String },
    #[error("invalid metadata: {0}")]
    Metadata(String),
    #[error("cannot connect: {0}")]
    Connect(String),
}

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
