//! The pub/sub contract: what the publish API asks of a broker, and how a broker hands
//! messages to the subscriptions the runtime opens. The broker never sees HTTP, gRPC or
//! the app: it gets bytes and returns what the subscriber decided.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use thiserror::Error;

use crate::{Component, Family};

/// Why a broker could not publish or subscribe.
#[derive(Debug, Error)]
pub enum PubSubError {
    /// The broker refused or failed; the message may not have been published.
    #[error("{0}")]
    Backend(String),
    /// The broker is closed.
    #[error("the pub/sub is closed")]
    Closed,
}

/// One message to publish: the bytes (a CloudEvent unless raw), and the request's
/// metadata (`ttlInSeconds`, broker-specific keys).
#[derive(Debug, Clone, Default)]
pub struct Publish {
    pub topic: String,
    pub data: Bytes,
    pub content_type: Option<String>,
    pub metadata: HashMap<String, String>,
}

/// One message a broker delivers to a subscription.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub topic: String,
    pub data: Bytes,
    pub content_type: Option<String>,
    pub metadata: HashMap<String, String>,
}

/// What the subscriber made of a message, as Dapr's status semantics have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Processed: acknowledge it.
    Success,
    /// Not processed: deliver it again.
    Retry,
    /// Never to be processed: acknowledge without processing (or dead-letter it).
    Drop,
}

/// The subscriber's answer to one message, once it has one.
pub type Outcome = Pin<Box<dyn Future<Output = Delivery> + Send>>;

/// Hands one message to the subscriber and reports the outcome.
pub type Handler = Arc<dyn Fn(Message) -> Outcome + Send + Sync>;

/// A subscription request: the topic, its metadata (`consumerID`, ...).
#[derive(Debug, Clone, Default)]
pub struct Subscribe {
    pub topic: String,
    pub metadata: HashMap<String, String>,
}

/// An open subscription; dropping it does not stop it, [`Subscription::stop`] does.
#[async_trait]
pub trait Subscription: Send + Sync {
    /// Stops delivering; messages in flight finish first.
    async fn stop(&self);
}

/// A pub/sub broker backend.
#[async_trait]
pub trait PubSub: Component {
    /// Features for the metadata API, as Dapr names them (`SUBSCRIBE_WILDCARDS`, ...).
    fn features(&self) -> Vec<String> {
        Vec::new()
    }

    /// Publishes one message; `Ok` once the broker has it.
    async fn publish(&self, message: Publish) -> Result<(), PubSubError>;

    /// Starts delivering `request.topic`'s messages to `handler`.
    async fn subscribe(
        &self,
        request: Subscribe,
        handler: Handler,
    ) -> Result<Box<dyn Subscription>, PubSubError>;
}

/// The `pubsub` family.
pub struct PubSubs;

impl Family for PubSubs {
    const NAME: &'static str = "pubsub";
    type Api = dyn PubSub;

    fn capabilities(api: &Self::Api) -> Vec<String> {
        api.features()
    }

    fn lifecycle(api: Arc<Self::Api>) -> Arc<dyn Component> {
        api
    }
}
