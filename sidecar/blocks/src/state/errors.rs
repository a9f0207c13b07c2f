//! The state API's errors, with the codes, statuses and reasons Dapr uses for each.

use http::StatusCode;

use crate::errors::{Code, DaprError, Detail};
use components_core::state::StateError;

pub fn not_configured(store: &str, app_id: &str) -> DaprError {
    DaprError::new(
        "ERR_STATE_STORE_NOT_CONFIGURED",
        format!("state store {store} is not configured"),
        StatusCode::INTERNAL_SERVER_ERROR,
        Code::FailedPrecondition,
    )
    .rich("DAPR_STATE_NOT_CONFIGURED")
    .with_app_id(app_id)
}

pub fn not_found(store: &str, app_id: &str) -> DaprError {
    DaprError::new(
        "ERR_STATE_STORE_NOT_FOUND",
        format!("state store {store} is not found"),
        StatusCode::BAD_REQUEST,
        Code::InvalidArgument,
    )
    .rich("DAPR_STATE_NOT_FOUND")
    .with_app_id(app_id)
}

/// The store an error is about, as Dapr's state errors name it.
fn resource(store: &str) -> Detail {
    Detail::ResourceInfo {
        resource_type: "state",
        resource_name: store.to_string(),
    }
}

/// A key with Dapr's separator in it. Dapr's HTTP handler wraps this error a second time,
/// so HTTP bodies carry the gRPC status text as the message.
pub fn illegal_key(store: &str, key: &str) -> DaprError {
    let message = format!("input key/keyPrefix '{key}' can't contain '||'");
    DaprError::new(
        "ERR_MALFORMED_REQUEST",
        message.clone(),
        StatusCode::BAD_REQUEST,
        Code::InvalidArgument,
    )
    .rich("DAPR_STATE_ILLEGAL_KEY")
    .with_detail(Detail::BadRequest {
        field: key.to_string(),
    })
    .with_detail(resource(store))
    .with_http_message(format!(
        "api error: code = InvalidArgument desc = {message}"
    ))
}

pub fn empty_key() -> DaprError {
    DaprError::malformed("\"key\" is a required field")
}

/// gRPC `SaveState` words an empty key differently from HTTP, as Dapr does.
pub fn empty_key_grpc() -> DaprError {
    DaprError::new(
        "ERR_STATE_SAVE",
        "state key cannot be empty",
        StatusCode::BAD_REQUEST,
        Code::InvalidArgument,
    )
    .with_reason("ERR_STATE_SAVE")
}

pub fn transactions_not_supported(store: &str) -> DaprError {
    DaprError::new(
        "ERR_STATE_STORE_NOT_SUPPORTED",
        format!("state store {store} doesn't support transactions"),
        StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unimplemented,
    )
    .rich("DAPR_STATE_TRANSACTIONS_NOT_SUPPORTED")
    .with_detail(Detail::Help {
        description: "Check the list of state stores and the features they support",
        url: "https://docs.dapr.io/reference/components-reference/supported-state-stores/",
    })
    .with_detail(resource(store))
}

pub fn query_not_supported(store: &str) -> DaprError {
    DaprError::new(
        "ERR_STATE_STORE_NOT_SUPPORTED",
        "state store does not support querying",
        StatusCode::INTERNAL_SERVER_ERROR,
        Code::Internal,
    )
    .rich("DAPR_STATE_QUERYING_NOT_SUPPORTED")
    .with_detail(resource(store))
}

pub fn query_failed(store: &str, detail: impl std::fmt::Display) -> DaprError {
    DaprError::new(
        "ERR_STATE_QUERY",
        format!("state store {store} query failed: {detail}"),
        StatusCode::INTERNAL_SERVER_ERROR,
        Code::Internal,
    )
    .rich("DAPR_STATE_QUERY_FAILED")
    .with_detail(resource(store))
}

pub fn unsupported_operation(op: &str) -> DaprError {
    DaprError::new(
        "ERR_NOT_SUPPORTED_STATE_OPERATION",
        format!("operation type {op} not supported"),
        StatusCode::BAD_REQUEST,
        Code::Unimplemented,
    )
    .with_reason("ERR_NOT_SUPPORTED_STATE_OPERATION")
}

/// Maps a store failure onto `code`, keeping Dapr's statuses: a mismatched ETag is a
/// conflict (409 / Aborted), a malformed one a bad request (400 / InvalidArgument), and
/// anything else, bad TTLs and options included, a 500.
fn store_failure(code: &'static str, context: String, err: StateError) -> DaprError {
    let (http, grpc) = match &err {
        StateError::EtagMismatch(_) => (StatusCode::CONFLICT, Code::Aborted),
        StateError::EtagInvalid(_) => (StatusCode::BAD_REQUEST, Code::InvalidArgument),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, Code::Internal),
    };
    DaprError::new(code, format!("{context}: {err}"), http, grpc).with_reason(code)
}

pub fn get_failed(store: &str, key: &str, err: StateError) -> DaprError {
    store_failure(
        "ERR_STATE_GET",
        format!("fail to get {key} from state store {store}"),
        err,
    )
}

pub fn save_failed(store: &str, err: StateError) -> DaprError {
    store_failure(
        "ERR_STATE_SAVE",
        format!("failed saving state in state store {store}"),
        err,
    )
}

pub fn delete_failed(key: &str, err: StateError) -> DaprError {
    store_failure(
        "ERR_STATE_DELETE",
        format!("failed deleting state with key {key}"),
        err,
    )
}

pub fn bulk_delete_failed(store: &str, err: StateError) -> DaprError {
    store_failure(
        "ERR_STATE_BULK_DELETE",
        format!("failed deleting state in state store {store}"),
        err,
    )
}

/// Transactions fail as a whole with 500, whatever the cause, as in Dapr.
pub fn transaction_failed(err: StateError) -> DaprError {
    DaprError::new(
        "ERR_STATE_TRANSACTION",
        format!("error while executing state transaction: {err}"),
        StatusCode::INTERNAL_SERVER_ERROR,
        Code::Internal,
    )
    .with_reason("ERR_STATE_TRANSACTION")
}
