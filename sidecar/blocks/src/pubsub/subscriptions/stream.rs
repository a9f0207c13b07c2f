//! Streaming subscriptions (`SubscribeTopicEventsAlpha1`): the subscriber is a client
//! holding a stream open, so the app needs no port. Each event goes out on the stream and
//! waits for the client's answer naming the event's id; a client that goes away leaves
//! its unanswered events to the broker.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use dapr::dapr::proto::runtime::v1::TopicEventRequest;
use dapr::dapr::proto::runtime::v1::topic_event_response::TopicEventResponseStatus;
use tokio::sync::{mpsc, oneshot};

use super::postman::{Delivered, Postman, SubscribedMessage, grpc_envelope};

/// Sends a streaming subscription's events to its client and matches the answers.
pub struct StreamPostman {
    out: mpsc::Sender<TopicEventRequest>,
    waiting: Mutex<HashMap<String, oneshot::Sender<i32>>>,
}

impl StreamPostman {
    /// Events for the client go to `out`.
    pub fn new(out: mpsc::Sender<TopicEventRequest>) -> Self {
        Self {
            out,
            waiting: Mutex::default(),
        }
    }

    /// The client's answer for event `id` (`TopicEventResponseStatus` as on the wire);
    /// false when no event of that id is waiting.
    pub fn answer(&self, id: &str, status: i32) -> bool {
        let waiter = self.waiting.lock().ok().and_then(|mut w| w.remove(id));
        match waiter {
            Some(tx) => tx.send(status).is_ok(),
            None => false,
        }
    }

    /// The client went away: every event still waiting goes back to the broker.
    pub fn close(&self) {
        if let Ok(mut w) = self.waiting.lock() {
            w.clear();
        }
    }
}

#[async_trait]
impl Postman for StreamPostman {
    async fn deliver(&self, msg: &SubscribedMessage) -> Delivered {
        let event = match grpc_envelope(msg) {
            Ok(e) => e,
            Err(why) => return Delivered::Retry(why),
        };
        let id = event.id.clone();
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiting.lock() {
            w.insert(id.clone(), tx);
        }
        if self.out.send(event).await.is_err() {
            self.answer(&id, TopicEventResponseStatus::Retry as i32);
            return Delivered::Retry("the streaming subscriber is gone".into());
        }
        match rx.await.map(TopicEventResponseStatus::try_from) {
            Ok(Ok(TopicEventResponseStatus::Success)) => Delivered::Success,
            Ok(Ok(TopicEventResponseStatus::Drop)) => Delivered::Drop,
            Ok(Ok(TopicEventResponseStatus::Retry)) => Delivered::Retry(format!(
                "RETRY status returned from the streaming subscriber for pub/sub event {id}"
            )),
            Ok(Err(_)) => Delivered::Retry(format!(
                "unknown status returned from the streaming subscriber for pub/sub event {id}"
            )),
            Err(_) => Delivered::Retry("the streaming subscriber is gone".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use serde_json::json;

    use super::*;

    fn msg(id: &str) -> SubscribedMessage {
        SubscribedMessage {
            cloud_event: json!({"id": id, "datacontenttype": "text/plain", "data": "hi"})
                .as_object()
                .cloned()
                .unwrap(),
            data: Bytes::new(),
            topic: "t".into(),
            pubsub: "p".into(),
            metadata: HashMap::new(),
            path: "/".into(),
        }
    }

    #[tokio::test]
    async fn answers_are_matched_by_event_id() {
        let (tx, mut rx) = mpsc::channel(4);
        let p = Arc::new(StreamPostman::new(tx));
        let p2 = p.clone();
        let a = tokio::spawn(async move { p2.deliver(&msg("a")).await });
        let sent = rx.recv().await.unwrap();
        assert_eq!(sent.id, "a");
        assert_eq!(sent.data, b"hi");
        assert!(!p.answer("other", 0));
        assert!(p.answer("a", TopicEventResponseStatus::Drop as i32));
        assert_eq!(a.await.unwrap(), Delivered::Drop);
    }

    #[tokio::test]
    async fn a_client_that_leaves_gives_the_event_back() {
        let (tx, mut rx) = mpsc::channel(4);
        let p = Arc::new(StreamPostman::new(tx));
        let p2 = p.clone();
        let a = tokio::spawn(async move { p2.deliver(&msg("a")).await });
        rx.recv().await.unwrap();
        p.close();
        assert!(matches!(a.await.unwrap(), Delivered::Retry(_)));
        drop(rx);
        assert!(matches!(p.deliver(&msg("b")).await, Delivered::Retry(_)));
    }
}
