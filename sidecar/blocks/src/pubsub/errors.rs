//! Dapr's pub/sub errors, with its codes, statuses, messages and details: Dapr 1.18's are
//! rich (`ErrorInfo` with a `DAPR_PUBSUB_*` reason), and all but "not found" and "not
//! configured" name the component in a `ResourceInfo`.

use http::StatusCode;

use super::PublishRequest;
use crate::errors::{Code, DaprError, Detail};

struct Spec {
    code: &'static str,
    reason: &'static str,
    http: StatusCode,
    grpc: Code,
}

fn build(spec: Spec, pubsub: &str, message: String, resource: bool) -> DaprError {
    let e = DaprError::new(spec.code, message, spec.http, spec.grpc).rich(spec.reason);
    if resource {
        e.with_detail(Detail::ResourceInfo {
            resource_type: "pubsub",
            resource_name: pubsub.to_string(),
        })
    } else {
        e
    }
}

pub fn not_configured(name: &str) -> DaprError {
    let spec = Spec {
        code: "ERR_PUBSUB_NOT_CONFIGURED",
        reason: "DAPR_PUBSUB_NOT_CONFIGURED",
        http: StatusCode::BAD_REQUEST,
        grpc: Code::FailedPrecondition,
    };
    build(
        spec,
        name,
        format!("pubsub {name} is not configured"),
        false,
    )
}

pub fn name_empty() -> DaprError {
    let spec = Spec {
        code: "ERR_PUBSUB_EMPTY",
        reason: "DAPR_PUBSUB_NAME_EMPTY",
        http: StatusCode::NOT_FOUND,
        grpc: Code::InvalidArgument,
    };
    build(spec, "", "pubsub name is empty".into(), true)
}

pub fn not_found(name: &str) -> DaprError {
    let spec = Spec {
        code: "ERR_PUBSUB_NOT_FOUND",
        reason: "DAPR_PUBSUB_NOT_FOUND",
        http: StatusCode::NOT_FOUND,
        grpc: Code::InvalidArgument,
    };
    build(spec, name, format!("pubsub {name} is not found"), false)
}

pub fn topic_empty(name: &str) -> DaprError {
    let spec = Spec {
        code: "ERR_TOPIC_NAME_EMPTY",
        reason: "DAPR_PUBSUB_TOPIC_NAME_EMPTY",
        http: StatusCode::NOT_FOUND,
        grpc: Code::InvalidArgument,
    };
    build(spec, name, format!("topic is empty in pubsub {name}"), true)
}

/// The request's metadata is unusable (`rawPayload` that is not a boolean).
pub fn bad_metadata(pubsub: &str, why: &str) -> DaprError {
    let spec = Spec {
        code: "ERR_PUBSUB_REQUEST_METADATA",
        reason: "DAPR_PUBSUB_METADATA_DESERIALIZATION",
        http: StatusCode::BAD_REQUEST,
        grpc: Code::InvalidArgument,
    };
    build(
        spec,
        pubsub,
        format!("failed deserializing metadata. Error: {why}"),
        true,
    )
}

/// The component's scopes do not let this app publish to the topic.
pub fn forbidden(pubsub: &str, topic: &str, app_id: &str) -> DaprError {
    let spec = Spec {
        code: "ERR_PUBSUB_FORBIDDEN",
        reason: "DAPR_PUBSUB_FORBIDDEN",
        http: StatusCode::FORBIDDEN,
        grpc: Code::PermissionDenied,
    };
    build(
        spec,
        pubsub,
        format!("topic {topic} is not allowed for app id {app_id}"),
        true,
    )
    .with_meta("topic", topic)
}

pub fn cloud_event_ser(pubsub: &str, app_id: &str, why: &str) -> DaprError {
    let spec = Spec {
        code: "ERR_PUBSUB_CLOUD_EVENTS_SER",
        reason: "DAPR_PUBSUB_CLOUD_EVENT_CREATION",
        http: StatusCode::INTERNAL_SERVER_ERROR,
        grpc: Code::InvalidArgument,
    };
    build(spec, pubsub, "cannot create cloudevent".into(), true)
        .with_meta("appID", app_id)
        .with_meta("error", why)
}

pub fn publish_failed(req: &PublishRequest, why: &str) -> DaprError {
    let spec = Spec {
        code: "ERR_PUBSUB_PUBLISH_MESSAGE",
        reason: "DAPR_PUBSUB_PUBLISH_MESSAGE",
        http: StatusCode::INTERNAL_SERVER_ERROR,
        grpc: Code::Internal,
    };
    build(
        spec,
        &req.pubsub,
        format!(
            "error when publishing to topic {} in pubsub {}: {why}",
            req.topic, req.pubsub
        ),
        true,
    )
    .with_meta("topic", &req.topic)
    .with_meta("error", why)
}

fn events_ser(pubsub: &str, reason: &'static str, message: String) -> DaprError {
    let spec = Spec {
        code: "ERR_PUBSUB_EVENTS_SER",
        reason,
        http: StatusCode::BAD_REQUEST,
        grpc: Code::InvalidArgument,
    };
    build(spec, pubsub, message, true)
}

/// A bulk request body that is not a list of entries.
pub fn unmarshal_events(pubsub: &str, topic: &str, app_id: &str, why: &str) -> DaprError {
    events_ser(
        pubsub,
        "DAPR_PUBSUB_UNMARSHAL_EVENTS",
        format!("error when unmarshaling the request for topic {topic} pubsub {pubsub}: {why}"),
    )
    .with_meta("appID", app_id)
}

/// A bulk entry whose event does not fit its content type.
pub fn marshal_envelope(pubsub: &str, topic: &str, app_id: &str, why: &str) -> DaprError {
    events_ser(
        pubsub,
        "DAPR_PUBSUB_MARSHAL_ENVELOPE",
        format!(
            "error when marshalling cloud event envelope for topic {topic} pubsub {pubsub}: {why}"
        ),
    )
    .with_meta("appID", app_id)
    .with_meta("error", why)
}

/// A bulk entry without an id, or with one already used.
pub fn marshal_events(pubsub: &str, topic: &str, app_id: &str) -> DaprError {
    let why = "entryId is duplicated or not present for entry";
    events_ser(
        pubsub,
        "DAPR_PUBSUB_MARSHAL_EVENTS",
        format!("error marshaling events to bytes for topic {topic} pubsub {pubsub}. error: {why}"),
    )
    .with_meta("appID", app_id)
    .with_meta("error", why)
}
