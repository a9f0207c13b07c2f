//! One message from the broker to the subscriber, as Dapr handles it: the CloudEvent read
//! (or synthesized for a raw payload), expired events dropped, a route chosen by the rules,
//! the event delivered, and what cannot be delivered sent to the dead-letter topic when
//! one is set. The broker hears back Success (acknowledge) or Retry (redeliver).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine;
use bytes::Bytes;
use components_core::pubsub::{Delivery, Message, PubSub, Publish};
use serde_json::{Map, Value};

use super::postman::{Delivered, Postman, SubscribedMessage};
use super::rules::{self, Rule};
use crate::pubsub::EVENT_TYPE;

/// The metadata key a message's content type travels under.
const CONTENT_TYPE_KEY: &str = "content-type";
/// The metadata key naming the pub/sub a message came from.
pub const PUBSUB_KEY: &str = "pubsubName";

/// Everything one subscription's messages need.
pub struct TopicHandler {
    pub pubsub_name: String,
    pub rules: Vec<Rule>,
    pub dead_letter_topic: String,
    /// The subscription's `rawPayload` metadata, as written (checked per message, as Dapr
    /// does, so that a bad value dead-letters rather than refusing the subscription).
    pub raw_payload: Option<String>,
    pub postman: Arc<dyn Postman>,
    /// The broker the subscription is open on, which dead letters go to.
    pub broker: Arc<dyn PubSub>,
    /// The pub/sub's inbound Resiliency policy: retries of a delivery the subscriber
    /// did not take, before it is dead-lettered or left to the broker.
    pub policy: Option<Arc<resiliency::Policy>>,
}

/// `rawPayload` as Dapr reads it: absent is false, anything but a Go boolean is an error.
fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        other => Err(format!(
            "rawPayload value must be a valid boolean: actual is '{other}'"
        )),
    }
}

/// The CloudEvent Dapr makes up for a raw payload: a random id, the bytes as
/// `data_base64`, since nothing says what they are.
fn from_raw_payload(data: &[u8], topic: &str, pubsub: &str) -> Map<String, Value> {
    let mut ce = Map::new();
    let s = |v: &str| Value::String(v.to_string());
    ce.insert("id".into(), s(&uuid::Uuid::new_v4().to_string()));
    ce.insert("specversion".into(), s("1.0"));
    ce.insert("datacontenttype".into(), s("application/octet-stream"));
    ce.insert("source".into(), s(crate::pubsub::DEFAULT_SOURCE));
    ce.insert("type".into(), s(EVENT_TYPE));
    ce.insert("topic".into(), s(topic));
    ce.insert("pubsubname".into(), s(pubsub));
    ce.insert(
        "data_base64".into(),
        s(&base64::engine::general_purpose::STANDARD.encode(data)),
    );
    ce
}

/// Whether the event's `expiration` has passed.
fn has_expired(ce: &Map<String, Value>, now: SystemTime) -> bool {
    ce.get("expiration")
        .and_then(Value::as_str)
        .and_then(kit::time::parse_rfc3339)
        .is_some_and(|at| at < now)
}

impl TopicHandler {
    /// Handles one message and says what the broker should do with it.
    pub async fn handle(&self, msg: Message) -> Delivery {
        let mut metadata = msg.metadata.clone();
        if let Some(ct) = &msg.content_type {
            metadata.insert(CONTENT_TYPE_KEY.into(), ct.clone());
        }
        metadata.insert(PUBSUB_KEY.into(), self.pubsub_name.clone());
        let raw = match self.raw_payload.as_deref().map(parse_bool).transpose() {
            Ok(raw) => raw.unwrap_or(false),
            Err(why) => {
                tracing::error!("error deserializing pubsub metadata: {why}");
                return self.undeliverable(&msg).await;
            }
        };
        let (cloud_event, data) = if raw {
            let mut ce = from_raw_payload(&msg.data, &msg.topic, &self.pubsub_name);
            copy_trace(&mut ce, &metadata, true);
            let data = serde_json::to_vec(&ce).unwrap_or_default();
            (ce, Bytes::from(data))
        } else {
            match serde_json::from_slice::<Map<String, Value>>(&msg.data) {
                Ok(mut ce) => {
                    copy_trace(&mut ce, &metadata, false);
                    (ce, msg.data.clone())
                }
                Err(e) => {
                    tracing::error!(
                        "error deserializing cloud event in pubsub {} and topic {}: {e}",
                        self.pubsub_name,
                        msg.topic
                    );
                    return self.undeliverable(&msg).await;
                }
            }
        };
        let id = cloud_event
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if has_expired(&cloud_event, SystemTime::now()) {
            tracing::warn!("dropping expired pub/sub event {id}");
            self.dead_letter(&msg).await;
            return Delivery::Success;
        }
        let path = match rules::route(&self.rules, &cloud_event) {
            Ok(Some(path)) => path.to_string(),
            Ok(None) => {
                tracing::debug!(
                    "no matching route for event {id} in pubsub {} and topic {}; skipping",
                    self.pubsub_name,
                    msg.topic
                );
                self.dead_letter(&msg).await;
                return Delivery::Success;
            }
            Err(e) => {
                tracing::error!(
                    "error finding matching route for event {id} in pubsub {} and topic {}: {e}",
                    self.pubsub_name,
                    msg.topic
                );
                return self.undeliverable(&msg).await;
            }
        };
        let sm = SubscribedMessage {
            cloud_event,
            data,
            topic: msg.topic.clone(),
            pubsub: self.pubsub_name.clone(),
            metadata,
            path,
        };
        let delivered = match &self.policy {
            None => self.postman.deliver(&sm).await,
            Some(policy) => policy
                .run(
                    || async { Ok::<_, ()>(self.postman.deliver(&sm).await) },
                    |d| match d {
                        Ok(Delivered::Retry(_)) | Err(()) => resiliency::Outcome::Failure,
                        Ok(_) => resiliency::Outcome::Success,
                    },
                )
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|()| String::new()))
                .unwrap_or_else(Delivered::Retry),
        };
        match delivered {
            Delivered::Success => Delivery::Success,
            Delivered::Drop => {
                if !self.dead_letter_topic.is_empty() && !self.dead_letter(&msg).await {
                    return Delivery::Retry;
                }
                Delivery::Success
            }
            Delivered::Retry(why) => {
                tracing::warn!("{why}");
                self.undeliverable(&msg).await
            }
        }
    }

    /// A message that failed: dead-lettered (and acknowledged) when a topic is set and the
    /// dead letter is published, otherwise left to the broker to redeliver.
    async fn undeliverable(&self, msg: &Message) -> Delivery {
        if !self.dead_letter_topic.is_empty() && self.dead_letter(msg).await {
            return Delivery::Success;
        }
        Delivery::Retry
    }

    /// Publishes the message as it came to the dead-letter topic; false when there is none
    /// or the publish failed.
    async fn dead_letter(&self, msg: &Message) -> bool {
        if self.dead_letter_topic.is_empty() {
            return false;
        }
        let publish = Publish {
            topic: self.dead_letter_topic.clone(),
            data: msg.data.clone(),
            content_type: msg.content_type.clone(),
            metadata: msg.metadata.clone(),
        };
        match self.broker.publish(publish).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(
                    "error sending message to dead letter, origin topic: {} dead letter topic {} err: {e}",
                    msg.topic,
                    self.dead_letter_topic
                );
                false
            }
        }
    }
}

/// Fills the event's trace fields from the broker's metadata: for an event read from the
/// wire only where it has none, for a synthesized one always.
fn copy_trace(ce: &mut Map<String, Value>, md: &HashMap<String, String>, overwrite: bool) {
    let put = |ce: &mut Map<String, Value>, k: &str, v: &str| {
        if overwrite || !ce.contains_key(k) {
            ce.insert(k.into(), Value::String(v.into()));
        }
    };
    if let Some(v) = md.get("traceid") {
        put(ce, "traceid", v);
    }
    if let Some(v) = md.get("traceparent") {
        let had = ce.contains_key("traceparent");
        put(ce, "traceparent", v);
        if overwrite || !had {
            // traceparent supersedes traceid
            ce.insert("traceid".into(), Value::String(v.clone()));
        }
    }
    if let Some(v) = md.get("tracestate") {
        put(ce, "tracestate", v);
    }
}

#[cfg(test)]
mod tests;
