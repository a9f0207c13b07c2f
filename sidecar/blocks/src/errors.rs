//! Dapr's API errors: the `ERR_*` code, the message, and the HTTP status and gRPC code
//! ([`Code`]) Dapr answers with. Building blocks construct these; each front door only encodes them,
//! so HTTP and gRPC callers always see the same error for the same failure.

use std::fmt;

use http::StatusCode;

pub use crate::code::Code;

/// Domain of the `google.rpc.ErrorInfo` Dapr attaches to its errors.
pub const ERROR_DOMAIN: &str = "dapr.io";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaprError {
    /// The `ERR_*` code, e.g. `ERR_STATE_STORE_NOT_FOUND`.
    pub code: &'static str,
    pub message: String,
    pub http: StatusCode,
    pub grpc: Code,
    /// `ErrorInfo.reason`, e.g. `DAPR_STATE_NOT_FOUND`. gRPC errors always carry it; HTTP
    /// bodies only for Dapr's newer "rich" errors (see `rich`).
    pub reason: Option<&'static str>,
    /// Rich errors put their `ErrorInfo` in HTTP bodies too; Dapr's older errors answer
    /// HTTP with just `errorCode` and `message`.
    pub rich: bool,
    /// `ErrorInfo.metadata` in HTTP bodies (Dapr sends none over gRPC for these).
    pub metadata: Vec<(&'static str, String)>,
    /// The call never reached its target (a peer sidecar was unavailable). Never sent to
    /// clients; retry policies use it to retry only what was not delivered.
    pub unreachable: bool,
    /// What few errors carry; boxed so that every `Result` in the hot path stays small.
    extra: Option<Box<Extra>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Extra {
    /// Details sent before the `ErrorInfo`, in Dapr's order.
    details: Vec<Detail>,
    /// The message of HTTP bodies, where Dapr's HTTP handler words it differently (it
    /// wraps some errors a second time).
    http_message: Option<String>,
}

/// A `google.rpc` detail other than the `ErrorInfo` every rich error ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// `google.rpc.BadRequest` with one field violation, described by the error's message.
    BadRequest { field: String },
    /// `google.rpc.ResourceInfo`: the component the error is about.
    ResourceInfo {
        resource_type: &'static str,
        resource_name: String,
    },
    /// `google.rpc.Help` with one link.
    Help {
        description: &'static str,
        url: &'static str,
    },
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
            rich: false,
            metadata: Vec::new(),
            unreachable: false,
            extra: None,
        }
    }

    /// The category Dapr counts this error's code under in `dapr_error_code_total`
    /// (`state`, `service-invocation`, ...); `None` for codes Dapr's table does not list,
    /// which Dapr leaves uncounted.
    pub fn category(&self) -> Option<&'static str> {
        if self.reason == Some("DAPR_STATE_ILLEGAL_KEY") {
            return Some("state");
        }
        let code = self.code;
        let prefixed = [
            ("ERR_STATE_", "state"),
            ("ERR_ACTOR_", "actor"),
            ("ERR_CONFIGURATION_", "configuration"),
            ("ERR_CRYPTO", "crypto"),
            ("ERR_SECRET_", "secret"),
            ("ERR_PUBSUB_", "pubsub"),
            ("ERR_TOPIC_", "pubsub"),
            ("ERR_LOCK_STORE_", "lock"),
            ("ERR_CONVERSATION_", "conversation"),
            ("ERR_WORKFLOW_", "workflow"),
            ("ERR_INSTANCE_ID_", "workflow"),
            ("DAPR_SCHEDULER_", "job"),
        ];
        if let Some((_, category)) = prefixed.iter().find(|(p, _)| code.starts_with(p)) {
            return Some(category);
        }
        Some(match code {
            "ERR_NOT_SUPPORTED_STATE_OPERATION" => "state",
            "ERR_PERMISSION_DENIED" => "secret",
            "ERR_PUBLISH_OUTBOX" => "pubsub",
            "ERR_DIRECT_INVOKE" => "service-invocation",
            "ERR_INVOKE_OUTPUT_BINDING" => "binding",
            "ERR_TRY_LOCK" | "ERR_UNLOCK" => "lock",
            "ERR_HEALTH_NOT_READY"
            | "ERR_HEALTH_APPID_NOT_MATCH"
            | "ERR_OUTBOUND_HEALTH_NOT_READY" => "health",
            "ERR_GET_WORKFLOW"
            | "ERR_START_WORKFLOW"
            | "ERR_PAUSE_WORKFLOW"
            | "ERR_RESUME_WORKFLOW"
            | "ERR_TERMINATE_WORKFLOW"
            | "ERR_PURGE_WORKFLOW"
            | "ERR_RAISE_EVENT_WORKFLOW" => "workflow",
            "ERR_API_UNIMPLEMENTED"
            | "ERR_APP_CHANNEL_NIL"
            | "ERR_BAD_REQUEST"
            | "ERR_BODY_READ"
            | "ERR_INTERNAL"
            | "ERR_MALFORMED_REQUEST"
            | "ERR_MALFORMED_REQUEST_DATA"
            | "ERR_MALFORMED_RESPONSE"
            | "ERROR" => "common",
            _ => return None,
        })
    }

    /// Appends a detail; details go out in the order they were added, then the ErrorInfo.
    pub fn with_detail(mut self, detail: Detail) -> Self {
        self.extra.get_or_insert_default().details.push(detail);
        self
    }

    /// Empties the field of every `BadRequest` violation, for the paths where Dapr has
    /// lost the field's value before it builds the error.
    pub fn without_violation_field(mut self) -> Self {
        if let Some(extra) = self.extra.as_deref_mut() {
            for detail in &mut extra.details {
                if let Detail::BadRequest { field } = detail {
                    field.clear();
                }
            }
        }
        self
    }

    /// Gives HTTP bodies a message of their own.
    pub fn with_http_message(mut self, message: String) -> Self {
        self.extra.get_or_insert_default().http_message = Some(message);
        self
    }

    /// Details to send before the `ErrorInfo`.
    pub fn details(&self) -> &[Detail] {
        self.extra.as_deref().map_or(&[], |e| &e.details)
    }

    /// The message HTTP bodies carry.
    pub fn http_message(&self) -> &str {
        self.extra
            .as_deref()
            .and_then(|e| e.http_message.as_deref())
            .unwrap_or(&self.message)
    }

    /// A legacy error whose reason shows only in gRPC details.
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// A rich error: its `ErrorInfo` shows in HTTP bodies as well.
    pub fn rich(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self.rich = true;
        self
    }

    pub fn with_meta(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.metadata.push((key, value.into()));
        self
    }

    /// Names the app in the error's metadata, as Dapr does only when it knows the app.
    pub fn with_app_id(self, app_id: &str) -> Self {
        if app_id.is_empty() {
            self
        } else {
            self.with_meta("appID", app_id)
        }
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(
            "ERR_MALFORMED_REQUEST",
            message,
            StatusCode::BAD_REQUEST,
            Code::InvalidArgument,
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
}
