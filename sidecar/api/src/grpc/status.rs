use std::collections::HashMap;

use bytes::Bytes;
use prost::Message;
use tonic::{Code, Request, Status};

use blocks::errors::{self, DaprError, Detail, ERROR_DOMAIN};

/// A building block's status code as tonic spells it.
pub fn grpc_code(code: errors::Code) -> Code {
    use errors::Code as C;
    match code {
        C::Ok => Code::Ok,
        C::Cancelled => Code::Cancelled,
        C::Unknown => Code::Unknown,
        C::InvalidArgument => Code::InvalidArgument,
        C::DeadlineExceeded => Code::DeadlineExceeded,
        C::NotFound => Code::NotFound,
        C::AlreadyExists => Code::AlreadyExists,
        C::PermissionDenied => Code::PermissionDenied,
        C::ResourceExhausted => Code::ResourceExhausted,
        C::FailedPrecondition => Code::FailedPrecondition,
        C::Aborted => Code::Aborted,
        C::OutOfRange => Code::OutOfRange,
        C::Unimplemented => Code::Unimplemented,
        C::Internal => Code::Internal,
        C::Unavailable => Code::Unavailable,
        C::DataLoss => Code::DataLoss,
        C::Unauthenticated => Code::Unauthenticated,
    }
}

/// `google.rpc.ErrorInfo`, the detail Dapr attaches to its errors.
#[derive(Clone, PartialEq, Message)]
pub struct ErrorInfo {
    #[prost(string, tag = "1")]
    pub reason: String,
    #[prost(string, tag = "2")]
    pub domain: String,
    #[prost(map = "string, string", tag = "3")]
    pub metadata: HashMap<String, String>,
}

/// `google.rpc.ResourceInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct ResourceInfo {
    #[prost(string, tag = "1")]
    pub resource_type: String,
    #[prost(string, tag = "2")]
    pub resource_name: String,
    #[prost(string, tag = "3")]
    pub owner: String,
    #[prost(string, tag = "4")]
    pub description: String,
}

/// `google.rpc.BadRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct BadRequest {
    #[prost(message, repeated, tag = "1")]
    pub field_violations: Vec<FieldViolation>,
}

/// `google.rpc.BadRequest.FieldViolation`.
#[derive(Clone, PartialEq, Message)]
pub struct FieldViolation {
    #[prost(string, tag = "1")]
    pub field: String,
    #[prost(string, tag = "2")]
    pub description: String,
}

/// `google.rpc.Help`.
#[derive(Clone, PartialEq, Message)]
pub struct Help {
    #[prost(message, repeated, tag = "1")]
    pub links: Vec<Link>,
}

/// `google.rpc.Help.Link`.
#[derive(Clone, PartialEq, Message)]
pub struct Link {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(string, tag = "2")]
    pub url: String,
}

const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";

fn any(type_name: &str, value: Vec<u8>) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("type.googleapis.com/google.rpc.{type_name}"),
        value,
    }
}

/// A detail as Dapr sends it; a field violation is described by the error's message.
fn detail_any(detail: &Detail, message: &str) -> prost_types::Any {
    match detail {
        Detail::BadRequest { field } => any(
            "BadRequest",
            BadRequest {
                field_violations: vec![FieldViolation {
                    field: field.clone(),
                    description: message.to_string(),
                }],
            }
            .encode_to_vec(),
        ),
        Detail::ResourceInfo {
            resource_type,
            resource_name,
        } => any(
            "ResourceInfo",
            ResourceInfo {
                resource_type: resource_type.to_string(),
                resource_name: resource_name.clone(),
                owner: String::new(),
                description: String::new(),
            }
            .encode_to_vec(),
        ),
        Detail::Help { description, url } => any(
            "Help",
            Help {
                links: vec![Link {
                    description: description.to_string(),
                    url: url.to_string(),
                }],
            }
            .encode_to_vec(),
        ),
    }
}

fn error_info_any(reason: &str, metadata: HashMap<String, String>) -> prost_types::Any {
    let info = ErrorInfo {
        reason: reason.to_string(),
        domain: ERROR_DOMAIN.to_string(),
        metadata,
    };
    prost_types::Any {
        type_url: ERROR_INFO_TYPE.to_string(),
        value: info.encode_to_vec(),
    }
}

fn with_details(code: Code, message: &str, details: Vec<prost_types::Any>) -> Status {
    let rpc = dapr::google::rpc::Status {
        code: code as i32,
        message: message.to_string(),
        details,
    };
    Status::with_details(code, message.to_string(), Bytes::from(rpc.encode_to_vec()))
}

/// Encodes a Dapr error as a gRPC status with a `google.rpc.ErrorInfo` detail when the
/// error has a reason, which SDKs surface as the error's reason and metadata.
pub fn to_status(err: &DaprError) -> Status {
    let mut status = bare_status(err);
    if let Some(tag) = crate::ErrorCodeTag::of(err) {
        status.set_source(std::sync::Arc::new(tag));
    }
    status
}

fn bare_status(err: &DaprError) -> Status {
    match err.reason {
        None => Status::new(grpc_code(err.grpc), err.message.clone()),
        Some(reason) => {
            let mut details: Vec<prost_types::Any> = err
                .details()
                .iter()
                .map(|d| detail_any(d, &err.message))
                .collect();
            details.push(error_info_any(reason, HashMap::new()));
            with_details(grpc_code(err.grpc), &err.message, details)
        }
    }
}

/// Turns a building block's result into a gRPC handler's: the block's [`DaprError`] knows
/// nothing of gRPC, this is where it becomes a status.
pub trait OrStatus<T> {
    fn or_status(self) -> Result<T, Status>;
}

impl<T> OrStatus<T> for Result<T, DaprError> {
    fn or_status(self) -> Result<T, Status> {
        self.map_err(|e| to_status(&e))
    }
}

/// The gRPC code Dapr reports for an HTTP app's status.
fn code_from_http_status(status: u16) -> Code {
    match status {
        200..=299 => Code::Ok,
        408 => Code::Cancelled,
        400 => Code::Internal,
        504 => Code::DeadlineExceeded,
        404 => Code::NotFound,
        409 => Code::AlreadyExists,
        403 => Code::PermissionDenied,
        401 => Code::Unauthenticated,
        429 => Code::ResourceExhausted,
        501 => Code::Unimplemented,
        503 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// An HTTP app's error answer to `InvokeService`, as Dapr reports it: the mapped code, the
/// status text, and an `ErrorInfo` with `http.code` and the start of the body.
pub fn http_error_status(status: http::StatusCode, body: &[u8]) -> Option<Status> {
    let code = code_from_http_status(status.as_u16());
    if code == Code::Ok {
        return None;
    }
    let text = status.canonical_reason().unwrap_or("");
    let mut detail = String::from_utf8_lossy(body).into_owned();
    if detail.len() > 63 {
        let mut cut = 63;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
    }
    let metadata = HashMap::from([
        ("http.code".to_string(), status.as_u16().to_string()),
        ("http.error_message".to_string(), detail),
    ]);
    Some(with_details(
        code,
        text,
        vec![error_info_any(text, metadata)],
    ))
}

/// Checks `dapr-api-token` metadata when `DAPR_API_TOKEN` is set, answering as Dapr does.
pub fn check_token(token: Option<&str>, req: Request<()>) -> Result<Request<()>, Status> {
    let Some(token) = token else {
        return Ok(req);
    };
    let detail = match req.metadata().get("dapr-api-token") {
        None => "missing api token in request metadata",
        Some(v) if crate::token_matches(v.as_bytes(), token.as_bytes()) => return Ok(req),
        Some(_) => "authentication error: api token mismatch",
    };
    let metadata = HashMap::from([
        ("http.code".to_string(), "401".to_string()),
        ("http.error_message".to_string(), detail.to_string()),
    ]);
    Err(with_details(
        Code::Unauthenticated,
        "Unauthorized",
        vec![error_info_any("Unauthorized", metadata)],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn errors_with_a_reason_carry_error_info() {
        let err = DaprError::new(
            "ERR_X",
            "boom",
            StatusCode::BAD_REQUEST,
            errors::Code::InvalidArgument,
        )
        .rich("DAPR_X")
        .with_meta("appID", "a");
        let status = to_status(&err);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "boom");
        let rpc = dapr::google::rpc::Status::decode(status.details()).expect("details decode");
        assert_eq!(rpc.details.len(), 1);
        assert_eq!(rpc.details[0].type_url, ERROR_INFO_TYPE);
        let info = ErrorInfo::decode(rpc.details[0].value.as_slice()).expect("error info decodes");
        assert_eq!(info.reason, "DAPR_X");
        assert_eq!(info.domain, "dapr.io");
        assert!(
            info.metadata.is_empty(),
            "Dapr sends no ErrorInfo metadata over gRPC here"
        );
    }

    #[test]
    fn every_code_keeps_its_number() {
        for code in errors::Code::ALL {
            assert_eq!(grpc_code(code) as i32, code.as_i32(), "{code:?}");
        }
    }

    #[test]
    fn token_check() {
        assert!(check_token(None, Request::new(())).is_ok());
        let denied = check_token(Some("t"), Request::new(())).expect_err("no token");
        assert_eq!(denied.code(), Code::Unauthenticated);
        let mut req = Request::new(());
        req.metadata_mut()
            .insert("dapr-api-token", "wrong".parse().expect("ascii"));
        assert!(check_token(Some("t"), req).is_err());
        let mut req = Request::new(());
        req.metadata_mut()
            .insert("dapr-api-token", "t".parse().expect("ascii"));
        assert!(check_token(Some("t"), req).is_ok());
    }
}
