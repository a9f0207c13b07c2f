//! `SubscribeTopicEventsAlpha1`: a streaming subscription. The first message names the
//! pub/sub and topic; the sidecar answers with an initial response, then sends each event
//! and takes the client's answers (by event id) until either side closes the stream.

use std::sync::Arc;

use dapr::dapr::proto::runtime::v1 as pb;
use dapr::dapr::proto::runtime::v1::subscribe_topic_events_request_alpha1::SubscribeTopicEventsRequestType as In;
use dapr::dapr::proto::runtime::v1::subscribe_topic_events_response_alpha1::SubscribeTopicEventsResponseType as Out;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use blocks::pubsub::subscriptions::rules::Rule;
use blocks::pubsub::subscriptions::stream::StreamPostman;
use blocks::pubsub::subscriptions::{BulkSubscribe, Kind, TopicSubscription};

use super::DaprGrpc;

/// How many events may wait to be sent to a slow client.
const BACKLOG: usize = 64;

pub type EventStream = ReceiverStream<Result<pb::SubscribeTopicEventsResponseAlpha1, Status>>;

impl DaprGrpc {
    pub(super) async fn subscribe_topic_events_impl(
        &self,
        mut incoming: Streaming<pb::SubscribeTopicEventsRequestAlpha1>,
    ) -> Result<EventStream, Status> {
        let first = incoming
            .message()
            .await?
            .ok_or_else(|| Status::unknown("initial request is required"))?;
        let Some(In::InitialRequest(init)) = first.subscribe_topic_events_request_type else {
            return Err(Status::unknown("initial request is required"));
        };
        if init.pubsub_name.is_empty() {
            return Err(Status::unknown("pubsubName is required"));
        }
        if init.topic.is_empty() {
            return Err(Status::unknown("topic is required"));
        }
        let sub = TopicSubscription {
            name: Some(format!("{}||{}", init.pubsub_name, init.topic)),
            pubsub: init.pubsub_name,
            topic: init.topic,
            metadata: init.metadata,
            rules: vec![Rule::default_route("/")],
            dead_letter_topic: init.dead_letter_topic.unwrap_or_default(),
            bulk: BulkSubscribe::default(),
            kind: Kind::Streaming,
            scopes: Vec::new(),
        };
        let (events_tx, mut events_rx) = mpsc::channel::<pb::TopicEventRequest>(BACKLOG);
        let postman = Arc::new(StreamPostman::new(events_tx));
        let subscriber = self.api.subscriber.clone();
        let id = subscriber
            .add_stream(sub, postman.clone())
            .await
            .map_err(|e| Status::unknown(e.to_string()))?;
        let (out_tx, out_rx) = mpsc::channel(BACKLOG);
        let initial = pb::SubscribeTopicEventsResponseAlpha1 {
            subscribe_topic_events_response_type: Some(Out::InitialResponse(
                pb::SubscribeTopicEventsResponseInitialAlpha1 {},
            )),
        };
        if out_tx.send(Ok(initial)).await.is_err() {
            subscriber.remove_stream(id).await;
            return Err(Status::cancelled("the subscriber left"));
        }
        // Events out: until the client stops reading.
        let forward = out_tx.clone();
        tokio::spawn(async move {
            while let Some(event) = events_rx.recv().await {
                let msg = pb::SubscribeTopicEventsResponseAlpha1 {
                    subscribe_topic_events_response_type: Some(Out::EventMessage(event)),
                };
                if forward.send(Ok(msg)).await.is_err() {
                    break;
                }
            }
        });
        // Answers in: until the client closes its side; then the subscription ends.
        tokio::spawn(async move {
            while let Some(Ok(msg)) = incoming.next().await {
                if let Some(In::EventProcessed(done)) = msg.subscribe_topic_events_request_type {
                    let status = done.status.map(|s| s.status).unwrap_or_default();
                    if !postman.answer(&done.id, status) {
                        tracing::warn!("streaming subscriber answered unknown event {}", done.id);
                    }
                }
            }
            postman.close();
            subscriber.remove_stream(id).await;
            drop(out_tx);
        });
        Ok(ReceiverStream::new(out_rx))
    }
}
