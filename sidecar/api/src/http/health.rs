//! Health and lifecycle routes: `/v1.0/healthz`, `/v1.0/healthz/outbound`, `/v1.0/shutdown`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::Api;
use blocks::errors::DaprError;

fn not_ready(code: &'static str, message: &str) -> Response {
    let err = DaprError::new(
        code,
        message,
        StatusCode::INTERNAL_SERVER_ERROR,
        blocks::errors::Code::Unavailable,
    );
    super::errors::error_response(&err)
}

/// `GET /v1.0/healthz`: 204 once initialised; `?appid=` must match when given.
pub async fn healthz(
    State(api): State<Arc<Api>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(id) = q.get("appid")
        && *id != api.metadata.app_id
    {
        return not_ready("ERR_HEALTH_APPID_NOT_MATCH", "dapr app-id does not match");
    }
    match (api.health.is_ready(), api.health.app_healthy()) {
        (true, true) => StatusCode::NO_CONTENT.into_response(),
        (false, _) => not_ready("ERR_HEALTH_NOT_READY", "dapr is not ready: [runtime]"),
        (true, false) => not_ready("ERR_HEALTH_NOT_READY", "dapr is not ready: [app]"),
    }
}

/// `GET /v1.0/healthz/outbound`: 204 once the API servers accept calls, which is what
/// SDKs wait for before their first request.
pub async fn outbound(State(api): State<Arc<Api>>) -> Response {
    if api.health.is_outbound_ready() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_ready(
            "ERR_OUTBOUND_HEALTH_NOT_READY",
            "dapr outbound is not ready",
        )
    }
}

/// `POST /v1.0/shutdown`: answers 204, then the runtime shuts down gracefully, or at once
/// with `dapr-force-shutdown: true`.
pub async fn shutdown(State(api): State<Arc<Api>>, headers: http::HeaderMap) -> StatusCode {
    let value = headers.get(crate::FORCE_SHUTDOWN).map(|v| v.as_bytes());
    if crate::forces_shutdown(value) {
        api.request_forced_shutdown();
    } else {
        api.request_shutdown();
    }
    StatusCode::NO_CONTENT
}
