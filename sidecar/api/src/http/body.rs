//! Request bodies, read within `--max-body-size` and parsed with Dapr's error on failure.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use serde::Deserialize;

use blocks::errors::DaprError;

use super::errors::HttpError;

/// The request body, read up to `--max-body-size`. Over the limit the request is refused
/// with Dapr's error (`ERR_MALFORMED_REQUEST`, "stream too large"), never half-processed.
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|e| match e {
                BytesRejection::FailedToBufferBody(_) => DaprError::malformed("stream too large"),
                other => DaprError::malformed(format!("failed to read request body: {other}")),
            })
            .map_err(HttpError)
    }
}

impl Body {
    /// Parses the body as JSON; `context` prefixes the parser's message as Dapr's does.
    pub fn json<'a, T: Deserialize<'a>>(&'a self, context: &str) -> Result<T, DaprError> {
        serde_json::from_slice(&self.0).map_err(|e| DaprError::malformed(format!("{context}{e}")))
    }
}
