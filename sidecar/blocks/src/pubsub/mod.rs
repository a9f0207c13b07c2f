//! Pub/sub: the loaded brokers with each one's topic scopes, publishing as Dapr does (the
//! request checked in Dapr's order, the body wrapped in a CloudEvent 1.0 envelope, passed
//! through as the caller's own CloudEvent, or sent raw with `metadata.rawPayload=true`),
//! and the subscriptions that deliver to the app ([`subscriptions`]).

pub mod bulk;
mod envelope;
pub mod errors;
pub mod scopes;
pub mod subscriptions;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use components_core::pubsub::{PubSub, Publish};
use serde_json::{Map, Value};

use crate::errors::DaprError;
pub use crate::protostruct::json_to_struct;
use crate::table::Table;
pub use envelope::{
    CLOUDEVENT_CONTENT_TYPE, DEFAULT_SOURCE, EVENT_TYPE, EnvelopeInput, envelope, is_content_type,
};
use scopes::TopicScopes;

/// The broker feature that makes Dapr leave TTLs to the broker.
const FEATURE_MESSAGE_TTL: &str = "MESSAGE_TTL";

/// One publish request, as both front doors hand it over.
#[derive(Debug, Clone, Default)]
pub struct PublishRequest {
    pub pubsub: String,
    pub topic: String,
    pub data: Bytes,
    /// The request's `Content-Type` (`data_content_type` over gRPC).
    pub content_type: Option<String>,
    /// `metadata.*` query parameters, or the gRPC request's metadata.
    pub metadata: HashMap<String, String>,
    /// The current span's `traceparent` and `tracestate`, when tracing.
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

/// A loaded broker and what this app may do on it.
pub struct Broker {
    pub api: Arc<dyn PubSub>,
    pub scopes: TopicScopes,
    /// Whether the broker keeps message TTLs itself.
    pub(crate) has_ttl: bool,
}

/// The loaded brokers by component name, and the app they publish for.
pub struct PubSubBlock {
    brokers: Table<Arc<Broker>>,
    pub(crate) app_id: String,
    /// The Resiliency policies for components, once read.
    policies: std::sync::OnceLock<Arc<resiliency::Policies>>,
}

/// `rawPayload` as Dapr reads it from request metadata: a Go boolean, or an error.
pub(crate) fn raw_payload(md: &HashMap<String, String>) -> Result<bool, String> {
    let Some((_, v)) = md
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("rawPayload"))
    else {
        return Ok(false);
    };
    match v.as_str() {
        "" => Ok(false),
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        other => Err(format!(
            "rawPayload value must be a valid boolean: actual is '{other}'"
        )),
    }
}

impl PubSubBlock {
    pub fn new(app_id: &str) -> Self {
        Self {
            brokers: Table::default(),
            app_id: app_id.to_string(),
            policies: std::sync::OnceLock::new(),
        }
    }

    /// The Resiliency policies publishing (outbound) and deliveries (inbound) run under.
    pub fn set_policies(&self, policies: Arc<resiliency::Policies>) {
        let _ = self.policies.set(policies);
    }

    /// The inbound policy of pub/sub `name`, if a Resiliency sets one.
    pub fn inbound_policy(&self, name: &str) -> Option<Arc<resiliency::Policy>> {
        self.policies.get()?.component_inbound(name)
    }

    /// The outbound policy of pub/sub `name`, if a Resiliency sets one.
    pub(crate) fn outbound_policy(&self, name: &str) -> Option<Arc<resiliency::Policy>> {
        self.policies.get()?.component_outbound(name)
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Adds or replaces a broker while the sidecar runs.
    pub fn upsert(&self, name: &str, api: Arc<dyn PubSub>, scopes: TopicScopes) {
        let has_ttl = api.features().iter().any(|f| f == FEATURE_MESSAGE_TTL);
        self.brokers.upsert(
            name,
            Arc::new(Broker {
                api,
                scopes,
                has_ttl,
            }),
        );
    }

    /// Removes a broker; returns whether it existed.
    pub fn remove(&self, name: &str) -> bool {
        self.brokers.remove(name)
    }

    /// The broker called `name`, if loaded.
    pub fn broker(&self, name: &str) -> Option<Arc<dyn PubSub>> {
        self.brokers.get(name).map(|b| b.api.clone())
    }

    /// The names of the loaded brokers.
    pub fn names(&self) -> Vec<String> {
        self.brokers.load().keys().cloned().collect()
    }

    /// Whether this app may subscribe to `topic` on `pubsub` (false for an unknown one).
    pub fn may_subscribe(&self, pubsub: &str, topic: &str) -> bool {
        self.brokers
            .get(pubsub)
            .is_some_and(|b| b.scopes.may_subscribe(topic))
    }

    /// Finds the broker a request names, with Dapr's errors in Dapr's order.
    pub(crate) fn target(&self, pubsub: &str, topic: &str) -> Result<Arc<Broker>, DaprError> {
        if self.brokers.load().is_empty() {
            return Err(errors::not_configured(pubsub));
        }
        if pubsub.is_empty() {
            return Err(errors::name_empty());
        }
        let broker = self
            .brokers
            .get(pubsub)
            .ok_or_else(|| errors::not_found(pubsub))?;
        if topic.is_empty() {
            return Err(errors::topic_empty(pubsub));
        }
        Ok(broker)
    }

    /// Checks that a request names a loaded pub/sub and a topic, with Dapr's errors.
    pub fn check_target(&self, pubsub: &str, topic: &str) -> Result<(), DaprError> {
        self.target(pubsub, topic).map(|_| ())
    }

    /// Publishes one message; the errors are Dapr's.
    pub async fn publish(&self, req: PublishRequest) -> Result<(), DaprError> {
        let broker = self.target(&req.pubsub, &req.topic)?;
        let raw =
            raw_payload(&req.metadata).map_err(|why| errors::bad_metadata(&req.pubsub, &why))?;
        if !broker.scopes.may_publish(&req.topic) {
            return Err(errors::forbidden(&req.pubsub, &req.topic, &self.app_id));
        }
        let (data, content_type) = if raw {
            (req.data.clone(), req.content_type.clone())
        } else {
            let ce = self
                .envelope(&req, broker.has_ttl, SystemTime::now())
                .map_err(|why| errors::cloud_event_ser(&req.pubsub, &self.app_id, &why))?;
            let bytes = serde_json::to_vec(&ce)
                .map_err(|e| errors::cloud_event_ser(&req.pubsub, &self.app_id, &e.to_string()))?;
            (
                Bytes::from(bytes),
                Some(CLOUDEVENT_CONTENT_TYPE.to_string()),
            )
        };
        let message = Publish {
            topic: req.topic.clone(),
            data,
            content_type,
            metadata: req.metadata.clone(),
        };
        let result = match self.outbound_policy(&req.pubsub) {
            None => broker.api.publish(message).await.map_err(|e| e.to_string()),
            Some(policy) => policy
                .run(
                    || broker.api.publish(message.clone()),
                    |r| match r {
                        Ok(()) => resiliency::Outcome::Success,
                        Err(_) => resiliency::Outcome::Failure,
                    },
                )
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string())),
        };
        result.map_err(|why| errors::publish_failed(&req, &why))
    }

    /// The CloudEvent Dapr publishes for `req` at `now`.
    pub fn envelope(
        &self,
        req: &PublishRequest,
        broker_has_ttl: bool,
        now: SystemTime,
    ) -> Result<Map<String, Value>, String> {
        envelope(
            &EnvelopeInput {
                app_id: &self.app_id,
                pubsub: &req.pubsub,
                topic: &req.topic,
                data: &req.data,
                content_type: req.content_type.as_deref(),
                metadata: &req.metadata,
                traceparent: req.traceparent.as_deref().unwrap_or_default(),
                tracestate: req.tracestate.as_deref().unwrap_or_default(),
                broker_has_ttl,
            },
            now,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> PubSubBlock {
        PubSubBlock::new("checkout")
    }

    fn req(data: &[u8], content_type: Option<&str>) -> PublishRequest {
        PublishRequest {
            pubsub: "pubsub".into(),
            topic: "orders".into(),
            data: Bytes::copy_from_slice(data),
            content_type: content_type.map(str::to_string),
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn requests_are_checked_in_daprs_order() {
        let b = block();
        let code = |r: Result<(), DaprError>| r.expect_err("refused").code;
        assert_eq!(
            code(b.publish(req(b"", None)).await),
            "ERR_PUBSUB_NOT_CONFIGURED"
        );
        b.upsert("pubsub", Arc::new(Dummy), TopicScopes::default());
        let mut r = req(b"", None);
        r.pubsub.clear();
        assert_eq!(code(b.publish(r).await), "ERR_PUBSUB_EMPTY");
        let mut r = req(b"", None);
        r.pubsub = "nope".into();
        let err = b.publish(r).await.expect_err("unknown");
        assert_eq!(err.code, "ERR_PUBSUB_NOT_FOUND");
        assert_eq!(err.message, "pubsub nope is not found");
        let mut r = req(b"", None);
        r.topic.clear();
        assert_eq!(code(b.publish(r).await), "ERR_TOPIC_NAME_EMPTY");
        let err = b.publish(req(b"x", None)).await.expect_err("broker fails");
        assert_eq!(err.code, "ERR_PUBSUB_PUBLISH_MESSAGE");
        assert_eq!(err.http, http::StatusCode::INTERNAL_SERVER_ERROR);
    }

    struct Dummy;

    #[async_trait::async_trait]
    impl components_core::Component for Dummy {}

    #[async_trait::async_trait]
    impl PubSub for Dummy {
        async fn publish(&self, _: Publish) -> Result<(), components_core::pubsub::PubSubError> {
            Err(components_core::pubsub::PubSubError::Backend("down".into()))
        }

        async fn subscribe(
            &self,
            _: components_core::pubsub::Subscribe,
            _: components_core::pubsub::Handler,
        ) -> Result<
            Box<dyn components_core::pubsub::Subscription>,
            components_core::pubsub::PubSubError,
        > {
            Err(components_core::pubsub::PubSubError::Closed)
        }
    }
}
