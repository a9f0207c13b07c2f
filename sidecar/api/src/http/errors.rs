//! Encoding [`DaprError`]s as HTTP responses, in Dapr's JSON shape.
//!
//! [`DaprError`]: blocks::errors::DaprError

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;

use blocks::errors::{DaprError, Detail, ERROR_DOMAIN};

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "errorCode")]
    error_code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    details: Vec<DetailJson<'a>>,
}

/// A detail as Dapr's HTTP bodies spell it: proto field names in snake case, keys in
/// alphabetical order (Dapr marshals Go maps), empty strings kept in `ResourceInfo` and
/// dropped from the inner messages of `BadRequest` and `Help`.
#[derive(Serialize)]
#[serde(untagged)]
enum DetailJson<'a> {
    BadRequest {
        #[serde(rename = "@type")]
        kind: &'static str,
        field_violations: [FieldViolationJson<'a>; 1],
    },
    ErrorInfo {
        #[serde(rename = "@type")]
        kind: &'static str,
        domain: &'static str,
        metadata: Option<BTreeMap<&'a str, &'a str>>,
        reason: &'a str,
    },
    Help {
        #[serde(rename = "@type")]
        kind: &'static str,
        links: [LinkJson<'a>; 1],
    },
    ResourceInfo {
        #[serde(rename = "@type")]
        kind: &'static str,
        description: &'static str,
        owner: &'static str,
        resource_name: &'a str,
        resource_type: &'a str,
    },
}

#[derive(Serialize)]
struct FieldViolationJson<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    field: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
}

#[derive(Serialize)]
struct LinkJson<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    url: &'a str,
}

fn detail_json<'a>(detail: &'a Detail, message: &'a str) -> DetailJson<'a> {
    match detail {
        Detail::BadRequest { field } => DetailJson::BadRequest {
            kind: "type.googleapis.com/google.rpc.BadRequest",
            field_violations: [FieldViolationJson {
                field,
                description: message,
            }],
        },
        Detail::ResourceInfo {
            resource_type,
            resource_name,
        } => DetailJson::ResourceInfo {
            kind: "type.googleapis.com/google.rpc.ResourceInfo",
            description: "",
            owner: "",
            resource_name,
            resource_type,
        },
        Detail::Help { description, url } => DetailJson::Help {
            kind: "type.googleapis.com/google.rpc.Help",
            links: [LinkJson { description, url }],
        },
    }
}

/// Encodes an error as Dapr does: `{"errorCode","message"}` plus a `google.rpc.ErrorInfo`
/// detail when the error carries a reason.
pub fn error_response(err: &DaprError) -> Response {
    let message = err.http_message();
    let details = match err.reason.filter(|_| err.rich) {
        None => Vec::new(),
        Some(reason) => err
            .details()
            .iter()
            .map(|d| detail_json(d, message))
            .chain(std::iter::once(DetailJson::ErrorInfo {
                kind: "type.googleapis.com/google.rpc.ErrorInfo",
                domain: ERROR_DOMAIN,
                metadata: (!err.metadata.is_empty())
                    .then(|| err.metadata.iter().map(|(k, v)| (*k, v.as_str())).collect()),
                reason,
            }))
            .collect(),
    };
    let body = ErrorBody {
        error_code: err.code,
        message,
        details,
    };
    let json = super::go_json::to_vec(&body).unwrap_or_default();
    let mut resp = (err.http, json).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(tag) = crate::ErrorCodeTag::of(err) {
        resp.extensions_mut().insert(tag);
    }
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
        blocks::errors::Code::NotFound,
    );
    error_response(&err)
}
