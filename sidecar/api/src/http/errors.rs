//! Encoding [`DaprError`]s as HTTP responses, in Dapr's JSON shape.
//!
//! [`DaprError`]: blocks::errors::DaprError

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;

use blocks::errors::{DaprError, ERROR_DOMAIN};

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "errorCode")]
    error_code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    details: Vec<ErrorInfoJson<'a>>,
}

#[derive(Serialize)]
struct ErrorInfoJson<'a> {
    #[serde(rename = "@type")]
    kind: &'static str,
    domain: &'static str,
    metadata: Option<BTreeMap<&'a str, &'a str>>,
    reason: &'a str,
}

/// Encodes an error as Dapr does: `{"errorCode","message"}` plus a `google.rpc.ErrorInfo`
/// detail when the error carries a reason.
pub fn error_response(err: &DaprError) -> Response {
    let details = err
        .reason
        .filter(|_| err.rich)
        .map(|reason| ErrorInfoJson {
            kind: "type.googleapis.com/google.rpc.ErrorInfo",
            domain: ERROR_DOMAIN,
            metadata: (!err.metadata.is_empty())
                .then(|| err.metadata.iter().map(|(k, v)| (*k, v.as_str())).collect()),
            reason,
        })
        .into_iter()
        .collect();
    let body = ErrorBody {
        error_code: err.code,
        message: &err.message,
        details,
    };
    let json = serde_json::to_vec(&body).unwrap_or_default();
    let mut resp = (err.http, json).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A building block's error on its way out of an HTTP handler or extractor. The building
/// block's [`DaprError`] knows nothing of HTTP; this is where it becomes a response.
#[derive(Debug)]
pub struct HttpError(pub DaprError);

impl From<DaprError> for HttpError {
    fn from(err: DaprError) -> Self {
        Self(err)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        error_response(&self.0)
    }
}

/// Anything no route matches: Dapr hands these to service invocation, which refuses a
/// request that names no app.
pub async fn no_route() -> Response {
    let err = DaprError::new(
        "ERR_DIRECT_INVOKE",
        "failed getting app id either from the URL path or the header dapr-app-id",
        StatusCode::NOT_FOUND,
        tonic::Code::NotFound,
    );
    error_response(&err)
}
