use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;

use crate::errors::DaprError;

/// What the state routes read from the query string: `metadata.<k>=<v>` pairs (first
/// value wins, as in Dapr), `consistency` and `concurrency`.
#[derive(Debug, Default)]
pub struct Params {
    pub metadata: HashMap<String, String>,
    pub consistency: String,
    pub concurrency: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = DaprError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| DaprError::malformed(format!("invalid query string: {e}")))?;
        let mut out = Params::default();
        for (k, v) in pairs {
            if let Some(name) = k.strip_prefix("metadata.") {
                out.metadata.entry(name.to_string()).or_insert(v);
            } else if k == "consistency" {
                out.consistency = v;
            } else if k == "concurrency" {
                out.concurrency = v;
            }
        }
        Ok(out)
    }
}
