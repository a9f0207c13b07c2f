//! The failures a state store reports to the building block.

use thiserror::Error;

/// Why a store refused or failed an operation. The building block maps these onto Dapr's
/// error codes; the distinction between a mismatched and a malformed ETag matters because
/// Dapr answers them with different statuses (409 versus 400).
#[derive(Debug, Clone, Error)]
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

    /// Whether the same operation could succeed if tried again: only a failing backend
    /// may recover. An ETag conflict or a malformed ETag (which Dapr never retries), a bad
    /// request, or an operation the store lacks fail the same way every time.
    pub fn is_transient(&self) -> bool {
        match self {
            StateError::Backend(_) => true,
            StateError::EtagMismatch(_)
            | StateError::EtagInvalid(_)
            | StateError::NotSupported(_)
            | StateError::InvalidRequest(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_backend_failures_are_worth_retrying() {
        assert!(StateError::backend("connection reset").is_transient());
        for permanent in [
            StateError::EtagMismatch("k".into()),
            StateError::EtagInvalid("x".into()),
            StateError::NotSupported("transactions"),
            StateError::InvalidRequest("bad ttl".into()),
        ] {
            assert!(!permanent.is_transient(), "{permanent}");
        }
    }
}
