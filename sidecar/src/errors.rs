//! Dapr's API errors: the `ERR_*` code, the message, and the HTTP status and gRPC code
//! Dapr answers with. Building blocks construct these; each front door only encodes them,
//! so HTTP and gRPC callers always see the same error for the same failure.

use std::fmt;

use http::StatusCode;
use tonic::Code;

/// Domain of the `google.rpc.ErrorInfo` Dapr attaches to its errors.
pub const ERROR_DOMAIN: &str = "dapr.io";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaprError {
    /// The `ERR_*` code, e.g. `ERR_STATE_STORE_NOT_FOUND`.
    pub code: &'static str,
    pub message: String,
    pub http: StatusCode,
    pub grpc: Code,
    /// `ErrorInfo.reason` for rich gRPC/HTTP error details, e.g. `DAPR_STATE_NOT_FOUND`.
    pub reason: Option<&'static str>,
    /// `ErrorInfo.metadata`.
    pub metadata: Vec<(&'static str, String)>,
}

impl fmt::Display for DaprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for DaprError {}

impl DaprError {
    pub fn new(
        code: &'static str,
        message: impl Into<String>,
        http: StatusCode,
        grpc: Code,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            http,
            grpc,
            reason: None,
            metadata: Vec::new(),
        }
    }

    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn with_meta(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.metadata.push((key, value.into()));
        self
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(
            "ERR_MALFORMED_REQUEST",
            message,
            StatusCode::BAD_REQUEST,
            Code::InvalidArgument,
        )
        .with_reason("DAPR_MALFORMED_REQUEST")
    }

    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            "ERR_MALFORMED_REQUEST",
            format!("request body too large: the limit is {limit} bytes"),
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::ResourceExhausted,
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            "ERR_UNAUTHORIZED",
            "invalid api token",
            StatusCode::UNAUTHORIZED,
            Code::Unauthenticated,
        )
    }

    pub fn not_implemented(what: &str) -> Self {
        Self::new(
            "ERR_NOT_IMPLEMENTED",
            format!("{what} is not implemented in this sidecar yet"),
            StatusCode::NOT_IMPLEMENTED,
            Code::Unimplemented,
        )
    }

    pub fn metadata_key_invalid(message: impl Into<String>) -> Self {
        Self::new(
            "ERR_MALFORMED_REQUEST",
            message,
            StatusCode::BAD_REQUEST,
            Code::InvalidArgument,
        )
    }
}
