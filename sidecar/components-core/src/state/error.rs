//! The failures a state store reports to the building block.

use thiserror::Error;

/// Why a store refused or failed an operation. The building block maps these onto Dapr's
/// error codes; the distinction between a mismatched and a malformed ETag matters because
/// Dapr answers them with different statuses (409 versus 400).
#[derive(Debug, Error)]
pub enum StateError {
    /// The supplied ETag does not match the stored one (or first-write found a value).
    #[error("possible etag mismatch. error from state store: {0}")]
    EtagMismatch(String),
    /// The supplied ETag cannot be an ETag of this store.
    #[error("invalid etag value: {0}")]
    EtagInvalid(String),
    /// The store cannot do this operation at all.
    #[error("{0} not supported by this state store")]
    NotSupported(&'static str),
    /// The request itself is wrong (bad TTL, bad query...).
    #[error("{0}")]
    InvalidRequest(String),
    /// The backend failed.
    #[error("{0}")]
    Backend(String),
}

impl StateError {
    pub fn backend(err: impl std::fmt::Display) -> Self {
        StateError::Backend(err.to_string())
    }
}
