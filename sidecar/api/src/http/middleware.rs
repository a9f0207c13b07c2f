//! The one middleware every API request passes: token check, metrics and API logging.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Api;

pub const API_TOKEN_HEADER: &str = "dapr-api-token";

fn exempt_from_token(req: &Request) -> bool {
    req.method() == Method::GET
        && matches!(
            req.uri().path().trim_end_matches('/'),
            "/v1.0/healthz" | "/v1.0/healthz/outbound"
        )
}

/// Enforces `DAPR_API_TOKEN` (Dapr answers a plain-text 401) and, with
/// `--enable-api-logging`, logs each call. The token header is removed before the
/// request goes further, so it can never leak to an app.
pub async fn guard(State(api): State<Arc<Api>>, mut req: Request, next: Next) -> Response {
    if let Some(token) = &api.api_token
        && !exempt_from_token(&req)
    {
        let ok = req
            .headers()
            .get(API_TOKEN_HEADER)
            .is_some_and(|v| crate::token_matches(v.as_bytes(), token.as_bytes()));
        if !ok {
            let mut resp = (StatusCode::UNAUTHORIZED, "invalid api token\n").into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            return resp;
        }
        req.headers_mut().remove(API_TOKEN_HEADER);
    }
    if !api.log_requests && api.metrics.is_none() {
        return next.run(req).await;
    }
    let method = req.method().clone();
    // A Uri clone shares its bytes: no copy of the path for the metrics' label.
    let uri = req.uri().clone();
    let started = Instant::now();
    let resp = next.run(req).await;
    if let Some(m) = &api.metrics {
        m.http_request(
            &method,
            uri.path(),
            resp.status().as_u16(),
            started.elapsed(),
        );
        if let Some(tag) = resp.extensions().get::<crate::ErrorCodeTag>() {
            m.error_code(tag.code, tag.category);
        }
    }
    if !api.log_requests {
        return resp;
    }
    let path = uri.path();
    tracing::info!(
        target: "dapr.runtime.http-info",
        method = %method,
        path = %path,
        code = resp.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "HTTP API Called"
    );
    resp
}
