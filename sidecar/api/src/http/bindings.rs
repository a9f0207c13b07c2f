//! `POST|PUT /v1.0/bindings/{name}`: one operation on an output binding. The body is
//! `{"data": ..., "metadata": {...}, "operation": "..."}`; `data` is passed on as its JSON
//! text, as Dapr does (a string arrives quoted). The binding's response metadata comes back
//! as `metadata.<key>` headers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use components_core::bindings::InvokeRequest;
use serde::Deserialize;

use super::body::Body;
use super::errors::HttpError;
use crate::Api;

#[derive(Deserialize)]
struct OutputBindingJson {
    #[serde(default)]
    data: serde_json::Value,
    #[serde(default)]
    metadata: Option<HashMap<String, String>>,
    #[serde(default)]
    operation: String,
}

pub async fn invoke(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, HttpError> {
    let req: OutputBindingJson = body.json("failed deserializing HTTP body: ")?;
    let mut metadata = req.metadata.unwrap_or_default();
    if let Some(ctx) = trace::current_context() {
        metadata.insert("traceparent".into(), ctx.traceparent());
        if let Some(ts) = ctx.trace_state {
            metadata.insert("tracestate".into(), ts.to_string());
        }
    }
    let data = serde_json::to_vec(&req.data).unwrap_or_default();
    let resp = api
        .bindings
        .invoke(
            &name,
            InvokeRequest {
                operation: req.operation,
                data: data.into(),
                metadata,
            },
        )
        .await?;
    let mut out = if resp.data.is_empty() && resp.metadata.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        let mut r = (StatusCode::OK, resp.data).into_response();
        let ct = resp.content_type.as_deref().unwrap_or("application/json");
        if let Ok(v) = HeaderValue::from_str(ct) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        r
    };
    for (k, v) in &resp.metadata {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(format!("metadata.{k}").as_bytes()),
            HeaderValue::from_str(v),
        ) {
            out.headers_mut().append(n, v);
        }
    }
    Ok(out)
}
