//! Why a component could not be created.

use thiserror::Error;

use crate::properties::PropertyError;

/// Why a component could not be created; reported with the component's name at startup.
#[derive(Debug, Error)]
pub enum ComponentError {
    /// The type's family is not one Dapr knows (`nosuch.thing`).
    #[error("incorrect type {0}")]
    IncorrectType(String),
    /// The family is known but no backend is registered for this type and version.
    #[error("couldn't find {noun} {kind}/{version}")]
    NotFound {
        noun: &'static str,
        kind: String,
        version: String,
    },
    /// The metadata is missing a value or holds one the backend cannot use.
    #[error("invalid metadata: {0}")]
    Metadata(String),
    /// A metadata value does not parse as what the backend reads it as. The message
    /// already ends with the property error's, so it is not also the `source`.
    #[error("invalid metadata: {0}")]
    Property(PropertyError),
    /// The backend could not be reached or refused the connection.
    #[error("cannot connect: {0}")]
    Connect(String),
}

impl From<PropertyError> for ComponentError {
    fn from(e: PropertyError) -> Self {
        Self::Property(e)
    }
}

impl ComponentError {
    /// Whether trying again later could succeed: an unreachable backend may come up, a
    /// wrong type or bad metadata will not change by waiting.
    pub fn is_transient(&self) -> bool {
        matches!(self, ComponentError::Connect(_))
    }
}
