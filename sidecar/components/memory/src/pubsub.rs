//! `pubsub.in-memory`: the embedded default broker, named `pubsub`. Every subscription of
//! a topic gets every message (there is one process, so no consumer groups). As Dapr's,
//! each subscription takes its messages one at a time, in order, and the broker never
//! redelivers: an answer other than success is logged, and retries are left to the
//! subscription's resiliency policy and dead-letter topic.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use components_core::pubsub::{
    Delivery, Handler, Message, PubSub, PubSubError, Publish, Subscribe, Subscription,
};
use components_core::{Component, ComponentError};

type Queues = Mutex<HashMap<String, Vec<(u64, mpsc::UnboundedSender<Message>)>>>;

#[derive(Default)]
pub struct MemoryPubSub {
    queues: Arc<Queues>,
    next: AtomicU64,
    closed: AtomicBool,
}

impl MemoryPubSub {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Component for MemoryPubSub {
    async fn close(&self) -> Result<(), ComponentError> {
        self.closed.store(true, Ordering::Release);
        if let Ok(mut q) = self.queues.lock() {
            q.clear();
        }
        Ok(())
    }
}

struct MemorySubscription {
    queues: Arc<Queues>,
    topic: String,
    id: u64,
    stopped: Arc<AtomicBool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        if let Ok(mut q) = self.queues.lock()
            && let Some(list) = q.get_mut(&self.topic)
        {
            list.retain(|(id, _)| *id != self.id);
        }
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            // The message being delivered finishes; queued ones are dropped with the queue.
            let _ = task.await;
        }
    }
}

#[async_trait]
impl PubSub for MemoryPubSub {
    async fn publish(&self, p: Publish) -> Result<(), PubSubError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(PubSubError::Closed);
        }
        let q = self
            .queues
            .lock()
            .map_err(|_| PubSubError::Backend("poisoned".into()))?;
        let Some(subs) = q.get(&p.topic).filter(|s| !s.is_empty()) else {
            return Ok(());
        };
        let message = Message {
            topic: p.topic,
            data: p.data,
            content_type: p.content_type,
            metadata: p.metadata,
        };
        let (last, rest) = subs.split_last().expect("not empty");
        for (_, tx) in rest {
            // A closed queue belongs to a subscription being stopped.
            let _ = tx.send(message.clone());
        }
        let _ = last.1.send(message);
        Ok(())
    }

    async fn subscribe(
        &self,
        request: Subscribe,
        handler: Handler,
    ) -> Result<Box<dyn Subscription>, PubSubError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(PubSubError::Closed);
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.queues
            .lock()
            .map_err(|_| PubSubError::Backend("poisoned".into()))?
            .entry(request.topic.clone())
            .or_default()
            .push((id, tx));
        let stopped = Arc::new(AtomicBool::new(false));
        let stop_seen = stopped.clone();
        let task = tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                if stop_seen.load(Ordering::Acquire) {
                    break;
                }
                let topic = message.topic.clone();
                if handler(message).await != Delivery::Success {
                    tracing::warn!(
                        %topic,
                        "in-memory pub/sub: the subscriber did not take a message; it is not redelivered"
                    );
                }
            }
        });
        Ok(Box::new(MemorySubscription {
            queues: self.queues.clone(),
            topic: request.topic,
            id,
            stopped,
            task: Mutex::new(Some(task)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;

    fn counting(delivered: Arc<AtomicUsize>, answer: Delivery) -> Handler {
        Arc::new(move |_m: Message| {
            let delivered = delivered.clone();
            Box::pin(async move {
                delivered.fetch_add(1, Ordering::SeqCst);
                answer
            })
        })
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn every_subscription_of_a_topic_gets_every_message() {
        let bus = MemoryPubSub::new();
        let (a, b, other) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let topic = |t: &str| Subscribe {
            topic: t.into(),
            ..Default::default()
        };
        let sa = bus
            .subscribe(topic("orders"), counting(a.clone(), Delivery::Success))
            .await
            .expect("subscribe");
        let _sb = bus
            .subscribe(topic("orders"), counting(b.clone(), Delivery::Success))
            .await
            .expect("subscribe");
        let _so = bus
            .subscribe(topic("other"), counting(other.clone(), Delivery::Success))
            .await
            .expect("subscribe");
        for _ in 0..3 {
            bus.publish(Publish {
                topic: "orders".into(),
                data: Bytes::from_static(b"{}"),
                ..Default::default()
            })
            .await
            .expect("publish");
        }
        settle().await;
        assert_eq!(a.load(Ordering::SeqCst), 3);
        assert_eq!(b.load(Ordering::SeqCst), 3);
        assert_eq!(other.load(Ordering::SeqCst), 0);
        sa.stop().await;
        bus.publish(Publish {
            topic: "orders".into(),
            ..Default::default()
        })
        .await
        .expect("publish");
        settle().await;
        assert_eq!(
            a.load(Ordering::SeqCst),
            3,
            "a stopped subscription gets nothing"
        );
        assert_eq!(b.load(Ordering::SeqCst), 4);
        bus.close().await.expect("close");
        assert!(matches!(
            bus.publish(Publish::default()).await,
            Err(PubSubError::Closed)
        ));
    }

    #[tokio::test]
    async fn messages_are_taken_one_at_a_time_in_order_and_never_redelivered() {
        let bus = MemoryPubSub::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let busy = Arc::new(AtomicBool::new(false));
        let (seen2, busy2) = (seen.clone(), busy.clone());
        let handler: Handler = Arc::new(move |m: Message| {
            let (seen, busy) = (seen2.clone(), busy2.clone());
            Box::pin(async move {
                assert!(!busy.swap(true, Ordering::SeqCst), "two deliveries at once");
                tokio::time::sleep(Duration::from_millis(2)).await;
                seen.lock().unwrap().push(m.data.clone());
                busy.store(false, Ordering::SeqCst);
                Delivery::Retry
            })
        });
        let s = bus
            .subscribe(
                Subscribe {
                    topic: "t".into(),
                    ..Default::default()
                },
                handler,
            )
            .await
            .expect("subscribe");
        for i in 0..20u8 {
            bus.publish(Publish {
                topic: "t".into(),
                data: Bytes::from(vec![i]),
                ..Default::default()
            })
            .await
            .expect("publish");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got: Vec<u8> = seen.lock().unwrap().iter().map(|b| b[0]).collect();
        assert_eq!(got, (0..20).collect::<Vec<u8>>(), "each once, in order");
        s.stop().await;
    }

    #[tokio::test]
    async fn conformance() {
        components_core::testing::pubsub::run(
            || async { Arc::new(MemoryPubSub::new()) as Arc<dyn PubSub> },
            components_core::testing::pubsub::Options { redelivery: None },
        )
        .await;
    }
}
