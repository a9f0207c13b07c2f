//! Programmatic subscriptions: what the app answers on `GET /dapr/subscribe` (HTTP) or
//! `ListTopicSubscriptions` (gRPC), read as Dapr reads it.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use channel::{AppChannel, AppRequest};
use dapr::dapr::proto::runtime::v1::ListTopicSubscriptionsResponse;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use thiserror::Error;

use super::rules::{Rule, RuleError};
use super::{BulkSubscribe, Kind, TopicSubscription};

/// Why the app's subscriptions could not be read.
#[derive(Debug, Error)]
pub enum AppSubscriptionsError {
    #[error("error getting topic list from app: {0}")]
    Call(String),
    #[error("error getting topics from app: {0}")]
    Decode(#[from] serde_json::Error),
    #[error(transparent)]
    Rule(#[from] RuleError),
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SubscriptionJson {
    pubsubname: String,
    topic: String,
    dead_letter_topic: String,
    metadata: HashMap<String, String>,
    route: String,
    routes: RoutesJson,
    bulk_subscribe: BulkJson,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RoutesJson {
    rules: Vec<RuleJson>,
    default: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RuleJson {
    #[serde(rename = "match")]
    match_expr: String,
    path: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct BulkJson {
    enabled: bool,
    max_messages_count: i32,
    max_await_duration_ms: i32,
}

/// Reads an HTTP app's `/dapr/subscribe` answer. Subscriptions without any route are
/// dropped with a warning, as in Dapr.
pub fn from_json(body: &[u8]) -> Result<Vec<TopicSubscription>, AppSubscriptionsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let items: Vec<SubscriptionJson> = serde_json::from_slice(body)?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let mut rules = Vec::with_capacity(item.routes.rules.len() + 1);
        for r in &item.routes.rules {
            rules.push(Rule::new(&r.match_expr, &r.path)?);
        }
        if !item.routes.default.is_empty() {
            rules.push(Rule::default_route(&item.routes.default));
        } else if !item.route.is_empty() {
            rules.push(Rule::default_route(&item.route));
        }
        if rules.is_empty() {
            tracing::warn!(
                "topic {} has an empty routes. removing from subscriptions list",
                item.topic
            );
            continue;
        }
        out.push(TopicSubscription {
            name: None,
            pubsub: item.pubsubname,
            topic: item.topic,
            metadata: item.metadata,
            rules,
            dead_letter_topic: item.dead_letter_topic,
            bulk: BulkSubscribe {
                enabled: item.bulk_subscribe.enabled,
                max_messages_count: item.bulk_subscribe.max_messages_count,
                max_await_duration_ms: item.bulk_subscribe.max_await_duration_ms,
            },
            kind: Kind::Programmatic,
            scopes: Vec::new(),
        });
    }
    Ok(out)
}

/// Reads a gRPC app's `ListTopicSubscriptions` answer; a subscription without routes is
/// delivered to the empty path, as in Dapr.
pub fn from_grpc(
    resp: ListTopicSubscriptionsResponse,
) -> Result<Vec<TopicSubscription>, AppSubscriptionsError> {
    let mut out = Vec::with_capacity(resp.subscriptions.len());
    for s in resp.subscriptions {
        let mut rules = Vec::new();
        if let Some(routes) = &s.routes {
            for r in &routes.rules {
                rules.push(Rule::new(&r.r#match, &r.path)?);
            }
            if !routes.default.is_empty() {
                rules.push(Rule::default_route(&routes.default));
            }
        }
        if rules.is_empty() {
            rules.push(Rule::default_route(""));
        }
        let bulk = s.bulk_subscribe.unwrap_or_default();
        out.push(TopicSubscription {
            name: None,
            pubsub: s.pubsub_name,
            topic: s.topic,
            metadata: s.metadata,
            rules,
            dead_letter_topic: s.dead_letter_topic,
            bulk: BulkSubscribe {
                enabled: bulk.enabled,
                max_messages_count: bulk.max_messages_count,
                max_await_duration_ms: bulk.max_await_duration_ms,
            },
            kind: Kind::Programmatic,
            scopes: Vec::new(),
        });
    }
    Ok(out)
}

/// Dapr's built-in retries for reading the app's subscriptions at start: three more
/// attempts, half a second apart and growing.
const ATTEMPTS: u32 = 4;
const FIRST_PAUSE: Duration = Duration::from_millis(500);

/// Asks the app for its subscriptions, retrying a failed call as Dapr does.
pub async fn load(
    app: &AppChannel,
    app_id: &str,
) -> Result<Vec<TopicSubscription>, AppSubscriptionsError> {
    let mut pause = FIRST_PAUSE;
    let mut attempt = 1;
    loop {
        match load_once(app, app_id).await {
            Ok(subs) => return Ok(subs),
            Err(AppSubscriptionsError::Call(e)) if attempt < ATTEMPTS => {
                tracing::debug!("reading the app's subscriptions failed ({e}); retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn load_once(
    app: &AppChannel,
    app_id: &str,
) -> Result<Vec<TopicSubscription>, AppSubscriptionsError> {
    let call = |e: &dyn std::fmt::Display| AppSubscriptionsError::Call(e.to_string());
    if let Some(grpc) = app.grpc().await.map_err(|e| call(&e))? {
        let resp = grpc
            .list_topic_subscriptions()
            .await
            .map_err(|s| call(&s.message))?;
        return from_grpc(resp);
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(app_id) {
        headers.insert("dapr-app-id", v);
    }
    let resp = app
        .invoke(AppRequest {
            method: http::Method::GET,
            path: "dapr/subscribe".into(),
            query: String::new(),
            headers,
            body: Bytes::new(),
            data_type: String::new(),
        })
        .await
        .map_err(|e| call(&e))?;
    match resp.status {
        StatusCode::OK => from_json(&resp.body),
        StatusCode::NOT_FOUND => {
            tracing::debug!("user app did not subscribe to any topic");
            Ok(Vec::new())
        }
        other => {
            tracing::error!("app returned http status code {other} from subscription endpoint");
            Ok(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use dapr::dapr::proto::runtime::v1::{TopicRoutes, TopicRule, TopicSubscription as Pb};

    use super::*;

    #[test]
    fn json_subscriptions_with_route_routes_and_rules() {
        let body = br#"[
            {"pubsubname":"pubsub","topic":"orders","route":"/orders","deadLetterTopic":"dlq",
             "metadata":{"rawPayload":"true"}},
            {"pubsubname":"pubsub","topic":"widgets","routes":{
                "rules":[{"match":"event.type == \"big\"","path":"/big"}],"default":"/small"},
             "bulkSubscribe":{"enabled":true,"maxMessagesCount":5}},
            {"pubsubname":"pubsub","topic":"nowhere"}
        ]"#;
        let subs = from_json(body).unwrap();
        assert_eq!(subs.len(), 2, "the one without routes is dropped");
        assert_eq!(subs[0].rules[0].path, "/orders");
        assert_eq!(subs[0].dead_letter_topic, "dlq");
        assert_eq!(subs[0].metadata["rawPayload"], "true");
        assert_eq!(subs[1].rules.len(), 2);
        assert_eq!(subs[1].rules[0].match_expr(), "event.type == \"big\"");
        assert_eq!(subs[1].rules[1].path, "/small");
        assert!(subs[1].bulk.enabled);
        assert_eq!(subs[1].bulk.max_messages_count, 5);
        assert!(subs.iter().all(|s| s.kind == Kind::Programmatic));
    }

    #[test]
    fn bad_json_and_bad_rules_are_errors_empty_is_none() {
        assert!(matches!(
            from_json(b"{not json"),
            Err(AppSubscriptionsError::Decode(_))
        ));
        let bad_rule =
            br#"[{"pubsubname":"p","topic":"t","routes":{"rules":[{"match":"((","path":"/x"}]}}]"#;
        assert!(matches!(
            from_json(bad_rule),
            Err(AppSubscriptionsError::Rule(_))
        ));
        assert!(from_json(b"").unwrap().is_empty());
    }

    #[test]
    fn grpc_subscriptions_default_to_the_empty_path() {
        let resp = ListTopicSubscriptionsResponse {
            subscriptions: vec![
                Pb {
                    pubsub_name: "p".into(),
                    topic: "a".into(),
                    ..Default::default()
                },
                Pb {
                    pubsub_name: "p".into(),
                    topic: "b".into(),
                    routes: Some(TopicRoutes {
                        rules: vec![TopicRule {
                            r#match: "event.type == \"x\"".into(),
                            path: "x".into(),
                        }],
                        default: "rest".into(),
                    }),
                    ..Default::default()
                },
            ],
        };
        let subs = from_grpc(resp).unwrap();
        assert_eq!(subs[0].rules.len(), 1);
        assert_eq!(subs[0].rules[0].path, "");
        assert_eq!(subs[1].rules.len(), 2);
        assert_eq!(subs[1].rules[1].path, "rest");
    }
}
