//! Declarative `Subscription` resources (`dapr.io/v1alpha1` with one `route`,
//! `dapr.io/v2alpha1` with CEL rules and a default) as the subscriptions block takes
//! them, scoped to this app.

use blocks::pubsub::subscriptions::rules::{Rule, RuleError};
use blocks::pubsub::subscriptions::{BulkSubscribe, Kind, TopicSubscription};
use crds::subscription::{v1alpha1, v2alpha1};
use serde_json::Value;

use crate::resources::{DocumentError, decode, decode_json};

/// A Subscription document of either version.
#[derive(Debug, Clone)]
pub enum Declared {
    V1(Box<v1alpha1::Subscription>),
    V2(Box<v2alpha1::Subscription>),
}

/// Decodes a Subscription document by its `apiVersion` (`v2alpha1` unless it says
/// `v1alpha1`, since that is the version Kubernetes stores).
pub fn decode_doc(doc: Value) -> Result<Declared, DocumentError> {
    let v1 = doc.get("apiVersion").and_then(Value::as_str) == Some("dapr.io/v1alpha1");
    Ok(if v1 {
        Declared::V1(Box::new(decode(doc)?))
    } else {
        Declared::V2(Box::new(decode(doc)?))
    })
}

/// A Subscription from the operator, which sends the stored (`v2alpha1`) JSON.
pub fn decode_operator(bytes: &[u8]) -> Result<Declared, DocumentError> {
    Ok(Declared::V2(Box::new(decode_json(bytes)?)))
}

fn bulk(b: &v1alpha1::BulkSubscribe) -> BulkSubscribe {
    BulkSubscribe {
        enabled: b.enabled,
        max_messages_count: b.max_messages_count,
        max_await_duration_ms: b.max_await_duration_ms,
    }
}

impl Declared {
    pub fn name(&self) -> &str {
        let name = match self {
            Declared::V1(s) => &s.metadata.name,
            Declared::V2(s) => &s.metadata.name,
        };
        name.as_deref().unwrap_or_default()
    }

    fn scopes(&self) -> &[String] {
        match self {
            Declared::V1(s) => &s.spec.scopes,
            Declared::V2(s) => &s.spec.scopes,
        }
    }

    /// The subscription, its rules compiled; `None` when it routes nowhere.
    pub fn to_topic(&self) -> Result<Option<TopicSubscription>, RuleError> {
        let (pubsub, topic, metadata, rules, dead_letter, bulk) = match self {
            Declared::V1(s) => {
                let spec = &s.spec.spec;
                let rules = if spec.route.is_empty() {
                    Vec::new()
                } else {
                    vec![Rule::default_route(&spec.route)]
                };
                (
                    &spec.pubsubname,
                    &spec.topic,
                    &spec.metadata,
                    rules,
                    &spec.dead_letter_topic,
                    bulk(&spec.bulk_subscribe),
                )
            }
            Declared::V2(s) => {
                let spec = &s.spec.spec;
                let mut rules = Vec::with_capacity(spec.routes.rules.len() + 1);
                for r in &spec.routes.rules {
                    rules.push(Rule::new(&r.match_, &r.path)?);
                }
                if !spec.routes.default.is_empty() {
                    rules.push(Rule::default_route(&spec.routes.default));
                }
                (
                    &spec.pubsubname,
                    &spec.topic,
                    &spec.metadata,
                    rules,
                    &spec.dead_letter_topic,
                    bulk(&spec.bulk_subscribe),
                )
            }
        };
        if rules.is_empty() {
            return Ok(None);
        }
        Ok(Some(TopicSubscription {
            name: Some(self.name().to_string()),
            pubsub: pubsub.clone(),
            topic: topic.clone(),
            metadata: metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            rules,
            dead_letter_topic: dead_letter.clone(),
            bulk,
            kind: Kind::Declarative,
            scopes: self.scopes().to_vec(),
        }))
    }
}

/// The subscriptions this app takes, in document order: out-of-scope ones, ones without a
/// route and ones whose rules do not compile are left out (the latter two logged).
pub fn for_app(declared: &[Declared], app_id: &str) -> Vec<TopicSubscription> {
    let mut out = Vec::new();
    for d in declared {
        if !crds::is_app_scoped(d.scopes(), app_id) {
            continue;
        }
        match d.to_topic() {
            Ok(Some(s)) => out.push(s),
            Ok(None) => tracing::warn!(
                "subscription {} has an empty routes. removing from subscriptions list",
                d.name()
            ),
            Err(e) => tracing::error!("subscription {}: {e}", d.name()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn both_versions_become_subscriptions_with_scopes_and_rules() {
        let v1 = decode_doc(json!({
            "apiVersion": "dapr.io/v1alpha1", "kind": "Subscription",
            "metadata": {"name": "orders"},
            "spec": {"topic": "orders", "pubsubname": "pubsub", "route": "/orders",
                     "deadLetterTopic": "dead", "metadata": {"rawPayload": true}},
            "scopes": ["checkout"]
        }))
        .unwrap();
        let v2 = decode_doc(json!({
            "apiVersion": "dapr.io/v2alpha1", "kind": "Subscription",
            "metadata": {"name": "widgets"},
            "spec": {"topic": "widgets", "pubsubname": "pubsub",
                     "routes": {"rules": [{"match": "event.type == \"big\"", "path": "/big"}],
                                "default": "/small"}}
        }))
        .unwrap();
        let none = decode_doc(json!({
            "apiVersion": "dapr.io/v2alpha1", "kind": "Subscription",
            "metadata": {"name": "nowhere"},
            "spec": {"topic": "t", "pubsubname": "pubsub"}
        }))
        .unwrap();
        let all = [v1, v2, none];
        let mine = for_app(&all, "checkout");
        assert_eq!(mine.len(), 2);
        assert_eq!(mine[0].rules[0].path, "/orders");
        assert_eq!(mine[0].dead_letter_topic, "dead");
        assert_eq!(mine[0].metadata["rawPayload"], "true");
        assert_eq!(mine[0].name.as_deref(), Some("orders"));
        assert_eq!(mine[1].rules.len(), 2);
        assert_eq!(mine[1].rules[1].path, "/small");
        let other = for_app(&all, "billing");
        assert_eq!(other.len(), 1, "the scoped one is not billing's");
        assert_eq!(other[0].topic, "widgets");
    }

    #[test]
    fn a_subscription_needs_pubsub_and_topic() {
        let e = decode_doc(json!({
            "apiVersion": "dapr.io/v2alpha1", "kind": "Subscription",
            "metadata": {"name": "x"}, "spec": {"topic": "t"}
        }));
        assert!(e.is_err());
    }
}
