//! `pubsub.in-memory`: the embedded default broker, named `pubsub`. Every subscription of
//! a topic gets every message (there is one process, so no consumer groups); each
//! subscription has its own queue and delivers concurrently; a message the subscriber
//! asks to retry is delivered again after a pause, a bounded number of times.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use components_core::pubsub::{
    Delivery, Handler, Message, PubSub, PubSubError, Publish, Subscribe, Subscription,
};
use components_core::{Component, ComponentError};

/// How many times a message the subscriber retries is delivered again.
const RETRIES: u32 = 10;
/// The pause before each redelivery.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

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

async fn deliver(handler: Handler, message: Message) {
    for attempt in 0..=RETRIES {
        match handler(message.clone()).await {
            Delivery::Success | Delivery::Drop => return,
            Delivery::Retry if attempt < RETRIES => tokio::time::sleep(RETRY_PAUSE).await,
            Delivery::Retry => {
                tracing::warn!(
                    topic = %message.topic,
                    "in-memory pub/sub: giving up on a message after {RETRIES} redeliveries"
                );
            }
        }
    }
}

struct MemorySubscription {
    queues: Arc<Queues>,
    topic: String,
    id: u64,
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn stop(&self) {
        if let Ok(mut q) = self.queues.lock()
            && let Some(list) = q.get_mut(&self.topic)
        {
            list.retain(|(id, _)| *id != self.id);
        }
    }
}

#[async_trait]
impl PubSub for MemoryPubSub {
    async fn publish(&self, p: Publish) -> Result<(), PubSubError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(PubSubError::Closed);
        }
        let message = Message {
            topic: p.topic,
            data: p.data,
            content_type: p.content_type,
            metadata: p.metadata,
        };
        let q = self
            .queues
            .lock()
            .map_err(|_| PubSubError::Backend("poisoned".into()))?;
        for (_, tx) in q.get(&message.topic).into_iter().flatten() {
            // A closed queue belongs to a subscription being stopped.
            let _ = tx.send(message.clone());
        }
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
        tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                tokio::spawn(deliver(handler.clone(), message));
            }
        });
        Ok(Box::new(MemorySubscription {
            queues: self.queues.clone(),
            topic: request.topic,
            id,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

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

    #[tokio::test(start_paused = true)]
    async fn retry_redelivers_until_success_or_the_bound() {
        let bus = MemoryPubSub::new();
        let tries = Arc::new(AtomicUsize::new(0));
        let counter = tries.clone();
        let handler: Handler = Arc::new(move |_m| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if n < 2 {
                    Delivery::Retry
                } else {
                    Delivery::Success
                }
            })
        });
        let _s = bus
            .subscribe(
                Subscribe {
                    topic: "t".into(),
                    ..Default::default()
                },
                handler,
            )
            .await
            .expect("subscribe");
        bus.publish(Publish {
            topic: "t".into(),
            ..Default::default()
        })
        .await
        .expect("publish");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(tries.load(Ordering::SeqCst), 3, "two retries, then success");

        let always = Arc::new(AtomicUsize::new(0));
        let _r = bus
            .subscribe(
                Subscribe {
                    topic: "r".into(),
                    ..Default::default()
                },
                counting(always.clone(), Delivery::Retry),
            )
            .await
            .expect("subscribe");
        bus.publish(Publish {
            topic: "r".into(),
            ..Default::default()
        })
        .await
        .expect("publish");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(always.load(Ordering::SeqCst), 1 + RETRIES as usize);
    }
}
