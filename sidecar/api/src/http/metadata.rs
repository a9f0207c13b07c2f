//! `/v1.0/metadata`: what this sidecar runs, and app-defined attributes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::body::Body;
use crate::Api;
use blocks::errors::DaprError;

use super::errors::HttpError;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetadataJson<'a> {
    id: &'a str,
    runtime_version: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    enabled_features: &'a [String],
    actors: [(); 0],
    components: Vec<ComponentJson<'a>>,
    extended: &'a BTreeMap<String, String>,
    subscriptions: Vec<SubscriptionJson>,
    http_endpoints: Vec<NameJson<'a>>,
    app_connection_properties: AppConnectionJson<'a>,
    actor_runtime: ActorRuntimeJson,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionJson {
    pubsubname: String,
    topic: String,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    metadata: HashMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rules: Vec<RuleJson>,
    dead_letter_topic: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct RuleJson {
    #[serde(rename = "match", skip_serializing_if = "String::is_empty")]
    match_expr: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    path: String,
}

#[derive(Serialize)]
struct NameJson<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct ComponentJson<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    version: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    capabilities: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AppConnectionJson<'a> {
    #[serde(skip_serializing_if = "is_zero_u16")]
    port: u16,
    #[serde(skip_serializing_if = "str::is_empty")]
    protocol: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    channel_address: &'a str,
    #[serde(skip_serializing_if = "is_zero_u32")]
    max_concurrency: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<HealthJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthJson<'a> {
    health_check_path: &'a str,
    health_probe_interval: &'a str,
    health_probe_timeout: &'a str,
    health_threshold: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActorRuntimeJson {
    runtime_status: &'static str,
    host_ready: bool,
    placement: &'static str,
}

fn is_zero_u16(v: &u16) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// `GET /v1.0/metadata`.
pub async fn get(State(api): State<Arc<Api>>) -> Response {
    let subscriptions = api
        .subscriber
        .list()
        .await
        .into_iter()
        .map(|s| SubscriptionJson {
            rules: s
                .rules
                .iter()
                .map(|r| RuleJson {
                    match_expr: r.match_expr().to_string(),
                    path: r.path.clone(),
                })
                .collect(),
            pubsubname: s.pubsub,
            topic: s.topic,
            metadata: s.metadata,
            dead_letter_topic: s.dead_letter_topic,
            kind: s.kind.as_str(),
        })
        .collect();
    let view = api.metadata.view();
    let m = view.block;
    let conn = &m.app_connection;
    let body = MetadataJson {
        id: &m.app_id,
        runtime_version: &m.runtime_version,
        enabled_features: &m.enabled_features,
        actors: [],
        components: view
            .components
            .iter()
            .map(|c| ComponentJson {
                name: &c.name,
                kind: &c.kind,
                version: &c.version,
                capabilities: &c.capabilities,
            })
            .collect(),
        extended: &view.extended,
        subscriptions,
        http_endpoints: m
            .http_endpoints
            .iter()
            .map(|name| NameJson { name })
            .collect(),
        app_connection_properties: AppConnectionJson {
            port: conn.port,
            protocol: &conn.protocol,
            channel_address: &conn.channel_address,
            max_concurrency: conn.max_concurrency,
            health: conn.health.as_ref().map(|h| HealthJson {
                health_check_path: &h.check_path,
                health_probe_interval: &h.probe_interval,
                health_probe_timeout: &h.probe_timeout,
                health_threshold: h.threshold,
            }),
        },
        actor_runtime: ActorRuntimeJson {
            runtime_status: "DISABLED",
            host_ready: false,
            placement: "placement: disconnected",
        },
    };
    let json = serde_json::to_vec(&body).unwrap_or_default();
    let mut resp = (StatusCode::OK, json).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `PUT /v1.0/metadata/{key}`: the raw body becomes the attribute's value.
pub async fn put(
    State(api): State<Arc<Api>>,
    Path(key): Path<String>,
    body: Body,
) -> Result<StatusCode, HttpError> {
    let value = String::from_utf8(body.0.to_vec())
        .map_err(|_| DaprError::malformed("metadata value must be UTF-8 text"))?;
    api.metadata.set(&key, value);
    Ok(StatusCode::NO_CONTENT)
}
