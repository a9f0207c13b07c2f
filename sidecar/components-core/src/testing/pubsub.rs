//! One behavioural suite every pub/sub broker must pass, whatever its backend. Each
//! broker's tests call [`run`] against a real instance; redelivery is tested only for
//! brokers that say how soon they redeliver.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::pubsub::*;

/// How long a message may take to arrive before the suite calls it lost.
const ARRIVAL: Duration = Duration::from_secs(10);
/// How long the suite waits to be sure that nothing more arrives.
const QUIET: Duration = Duration::from_millis(500);

/// What the suite may expect of the broker under test. Its slowest handler takes 300 ms:
/// a broker that cuts handlers short must allow them longer.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The longest a broker takes to deliver again a message answered `Retry`; `None`
    /// for a broker that does not redeliver (redelivery is then not tested). Also how
    /// long the suite waits to be sure that an acknowledged message does not come back.
    pub redelivery: Option<Duration>,
}

/// Runs the whole suite, each check on a broker of its own from `make` (closed at the
/// end of the check); panics with a description of the first broken promise.
pub async fn run<F, Fut>(make: F, options: Options)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn PubSub>>,
{
    let p = format!("conf-{}-", uuid::Uuid::new_v4().simple());
    let p = p.as_str();
    let quiet = options.redelivery.unwrap_or(QUIET);
    check(&make, |b| round_trip(b, p, quiet)).await;
    check(&make, |b| every_message_arrives(b, p)).await;
    check(&make, |b| topics_are_separate(b, p)).await;
    if let Some(within) = options.redelivery {
        check(&make, |b| retry_redelivers(b, p, within)).await;
        check(&make, |b| drop_is_not_redelivered(b, p, within)).await;
    }
    check(&make, |b| stop_ends_delivery(b, p)).await;
    check(&make, |b| stop_waits_for_handlers(b, p)).await;
}

async fn check<F, Fut, C, CFut>(make: &F, body: C)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn PubSub>>,
    C: FnOnce(Arc<dyn PubSub>) -> CFut,
    CFut: Future<Output = ()>,
{
    let broker = make().await;
    body(broker.clone()).await;
    broker.close().await.expect("close the broker");
}

/// A handler that records every delivery and answers with `answer(message, attempt)`,
/// counting attempts per payload from 0.
fn recording<A>(answer: A) -> (Handler, mpsc::UnboundedReceiver<Message>)
where
    A: Fn(&Message, usize) -> Delivery + Send + Sync + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let attempts = Arc::new(std::sync::Mutex::new(HashMap::<Bytes, usize>::new()));
    let handler: Handler = Arc::new(move |m: Message| {
        let attempt = attempts
            .lock()
            .map(|mut a| {
                let n = a.entry(m.data.clone()).or_insert(0);
                *n += 1;
                *n - 1
            })
            .unwrap_or_default();
        let delivery = answer(&m, attempt);
        let _ = tx.send(m);
        Box::pin(async move { delivery })
    });
    (handler, rx)
}

fn acking() -> (Handler, mpsc::UnboundedReceiver<Message>) {
    recording(|_, _| Delivery::Success)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Message>, within: Duration) -> Option<Message> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

async fn expect_next(rx: &mut mpsc::UnboundedReceiver<Message>, what: &str) -> Message {
    next(rx, ARRIVAL)
        .await
        .unwrap_or_else(|| panic!("{what}: nothing delivered within {ARRIVAL:?}"))
}

async fn expect_quiet(rx: &mut mpsc::UnboundedReceiver<Message>, within: Duration, what: &str) {
    if let Some(m) = next(rx, within).await {
        panic!("{what}: unexpected delivery of {:?} on {}", m.data, m.topic);
    }
}

async fn subscribe(broker: &dyn PubSub, topic: &str, handler: Handler) -> Box<dyn Subscription> {
    broker
        .subscribe(
            Subscribe {
                topic: topic.into(),
                ..Default::default()
            },
            handler,
        )
        .await
        .unwrap_or_else(|e| panic!("subscribe to {topic}: {e}"))
}

async fn publish(broker: &dyn PubSub, topic: &str, data: &[u8]) {
    broker
        .publish(Publish {
            topic: topic.into(),
            data: Bytes::copy_from_slice(data),
            content_type: Some("application/octet-stream".into()),
            metadata: HashMap::new(),
        })
        .await
        .unwrap_or_else(|e| panic!("publish to {topic}: {e}"));
}

async fn round_trip(broker: Arc<dyn PubSub>, p: &str, quiet: Duration) {
    let topic = format!("{p}round-trip");
    let (handler, mut rx) = acking();
    let sub = subscribe(&*broker, &topic, handler).await;
    let payloads: [&[u8]; 3] = [
        b"\x00\x01 binary \xfe\xff",
        br#"{"specversion":"1.0","data":{"n":1}}"#,
        b"",
    ];
    for data in payloads {
        publish(&*broker, &topic, data).await;
        let got = expect_next(&mut rx, "a published message").await;
        assert_eq!(got.topic, topic, "delivered on another topic");
        assert_eq!(got.data.as_ref(), data, "the bytes changed on the way");
    }
    expect_quiet(&mut rx, quiet, "an acknowledged message came back").await;
    sub.stop().await;
}

async fn every_message_arrives(broker: Arc<dyn PubSub>, p: &str) {
    let topic = format!("{p}many");
    let (handler, mut rx) = acking();
    let sub = subscribe(&*broker, &topic, handler).await;
    let sent: Vec<String> = (0..25).map(|i| format!("message-{i}")).collect();
    for m in &sent {
        publish(&*broker, &topic, m.as_bytes()).await;
    }
    let mut got: Vec<String> = Vec::new();
    while got.len() < sent.len() {
        let m = expect_next(
            &mut rx,
            &format!("message {} of {}", got.len() + 1, sent.len()),
        )
        .await;
        got.push(String::from_utf8_lossy(&m.data).into_owned());
    }
    expect_quiet(&mut rx, QUIET, "more messages than were published").await;
    got.sort();
    let mut want = sent.clone();
    want.sort();
    assert_eq!(got, want, "each published message exactly once");
    sub.stop().await;
}

async fn topics_are_separate(broker: Arc<dyn PubSub>, p: &str) {
    let (a, b) = (format!("{p}topic-a"), format!("{p}topic-b"));
    let (ha, mut ra) = acking();
    let (hb, mut rb) = acking();
    let sa = subscribe(&*broker, &a, ha).await;
    let sb = subscribe(&*broker, &b, hb).await;
    publish(&*broker, &a, b"for a 1").await;
    publish(&*broker, &a, b"for a 2").await;
    publish(&*broker, &b, b"for b").await;
    for _ in 0..2 {
        let m = expect_next(&mut ra, "a message on topic a").await;
        assert_eq!(m.topic, a);
        assert!(m.data.starts_with(b"for a"), "topic a got {:?}", m.data);
    }
    let m = expect_next(&mut rb, "a message on topic b").await;
    assert_eq!(
        (m.topic.as_str(), m.data.as_ref()),
        (b.as_str(), &b"for b"[..])
    );
    expect_quiet(&mut ra, QUIET, "topic a").await;
    expect_quiet(&mut rb, Duration::ZERO, "topic b").await;
    sa.stop().await;
    sb.stop().await;
}

async fn retry_redelivers(broker: Arc<dyn PubSub>, p: &str, within: Duration) {
    let topic = format!("{p}retry");
    let (handler, mut rx) = recording(|_, attempt| {
        if attempt == 0 {
            Delivery::Retry
        } else {
            Delivery::Success
        }
    });
    let sub = subscribe(&*broker, &topic, handler).await;
    publish(&*broker, &topic, b"try again").await;
    let first = expect_next(&mut rx, "the message to retry").await;
    let again = next(&mut rx, within).await.unwrap_or_else(|| {
        panic!("a message answered Retry was not redelivered within {within:?}")
    });
    assert_eq!(again.topic, topic);
    assert_eq!(again.data, first.data, "redelivered a different message");
    expect_quiet(&mut rx, within, "redelivered after Success").await;
    sub.stop().await;
}

async fn drop_is_not_redelivered(broker: Arc<dyn PubSub>, p: &str, within: Duration) {
    let topic = format!("{p}drop");
    let (handler, mut rx) = recording(|_, _| Delivery::Drop);
    let sub = subscribe(&*broker, &topic, handler).await;
    publish(&*broker, &topic, b"never mind").await;
    expect_next(&mut rx, "the message to drop").await;
    expect_quiet(&mut rx, within, "redelivered after Drop").await;
    sub.stop().await;
}

async fn stop_ends_delivery(broker: Arc<dyn PubSub>, p: &str) {
    let topic = format!("{p}stop");
    let (handler, mut rx) = acking();
    let sub = subscribe(&*broker, &topic, handler).await;
    publish(&*broker, &topic, b"before stop").await;
    expect_next(&mut rx, "the message before stop").await;
    sub.stop().await;
    publish(&*broker, &topic, b"after stop").await;
    expect_quiet(&mut rx, QUIET, "delivered after stop").await;
}

async fn stop_waits_for_handlers(broker: Arc<dyn PubSub>, p: &str) {
    let topic = format!("{p}stop-waits");
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let done = Arc::new(AtomicBool::new(false));
    let finished = done.clone();
    let handler: Handler = Arc::new(move |_m: Message| {
        let (started_tx, finished) = (started_tx.clone(), finished.clone());
        Box::pin(async move {
            let _ = started_tx.send(());
            tokio::time::sleep(Duration::from_millis(300)).await;
            finished.store(true, Ordering::SeqCst);
            Delivery::Success
        })
    });
    let sub = subscribe(&*broker, &topic, handler).await;
    publish(&*broker, &topic, b"slow").await;
    tokio::time::timeout(ARRIVAL, started.recv())
        .await
        .ok()
        .flatten()
        .expect("the slow handler was never called");
    sub.stop().await;
    assert!(
        done.load(Ordering::SeqCst),
        "stop returned before the handler in flight finished"
    );
}
