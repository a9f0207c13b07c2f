//! Why a component could not be created.

use thiserror::Error;

/// Why a component could not be created; reported with the component's name at startup.
#[derive(Debug, Error)]
pub enum ComponentError {
    /// No factory is registered for this `spec.type`/`spec.version`.
    #[error("unknown component type {kind}/{version}")]
    UnknownType { kind: String, version: String },
    /// The metadata is missing a value or holds one the backend cannot use.
    #[error("invalid metadata: {0}")]
    Metadata(String),
    /// The backend could not be reached or refused the connection.
    #[error("cannot connect: {0}")]
    Connect(String),
}
