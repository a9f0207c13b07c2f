//! Dapr's HTTP API on `--dapr-http-port` (and the public port's health and metadata
//! routes). Routes are grouped by building block; the layers around them are, in order:
//! CORS (preflights are answered before any token is asked for), the request's span,
//! API-token check and request logging (one middleware), then the body-size limit.

mod bindings;
mod body;
mod compact;
mod cors;
mod errors;
mod go_json;
mod health;
mod invoke;
mod metadata;
mod middleware;
mod params;
mod pubsub;
pub mod spans;
mod state;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post, put};

use crate::Api;
pub use cors::AllowedOrigins;
pub use errors::error_response;

/// The full API router served on `--dapr-http-port`.
pub fn router(api: Arc<Api>) -> Router {
    let limit = api.max_body_size;
    Router::new()
        .route("/v1.0/state/{store}", post(state::save).put(state::save))
        .route(
            "/v1.0/state/{store}/bulk",
            post(state::bulk_get)
                .put(state::bulk_get)
                .get(state::get)
                .delete(state::delete),
        )
        .route(
            "/v1.0/state/{store}/transaction",
            post(state::transaction)
                .put(state::transaction)
                .get(state::get)
                .delete(state::delete),
        )
        .route(
            "/v1.0/state/{store}/{key}",
            get(state::get).delete(state::delete),
        )
        .route(
            "/v1.0-alpha1/state/{store}/query",
            post(state::query).put(state::query),
        )
        .route(
            "/v1.0/publish/{pubsub}/{*topic}",
            post(pubsub::publish).put(pubsub::publish),
        )
        .route(
            "/v1.0/publish/{pubsub}",
            post(pubsub::publish_without_topic).put(pubsub::publish_without_topic),
        )
        .route(
            "/v1.0/publish/bulk/{pubsub}/{*topic}",
            post(pubsub::bulk_publish),
        )
        .route(
            "/v1.0-alpha1/publish/bulk/{pubsub}/{*topic}",
            post(pubsub::bulk_publish),
        )
        .route(
            "/v1.0/bindings/{name}",
            post(bindings::invoke).put(bindings::invoke),
        )
        .route("/v1.0/metadata", get(metadata::get))
        .route("/v1.0/metadata/{key}", put(metadata::put))
        .route("/v1.0/healthz", get(health::healthz))
        .route("/v1.0/healthz/outbound", get(health::outbound))
        .route("/v1.0/shutdown", post(health::shutdown))
        .route("/v1.0/invoke/{*rest}", any(invoke::invoke))
        .fallback(invoke::by_header)
        .method_not_allowed_fallback(invoke::by_header)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            middleware::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            spans::trace,
        ))
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            cors::cors,
        ))
        .with_state(api)
}

/// The public port (`--dapr-public-port`): health and metadata only, no token, as Dapr
/// serves it for probes.
pub fn public_router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/v1.0/healthz", get(health::healthz))
        .route("/v1.0/healthz/outbound", get(health::outbound))
        .route("/v1.0/metadata", get(metadata::get))
        .route("/v1.0/metadata/{key}", put(metadata::put))
        .fallback(errors::no_route)
        .with_state(api)
}
