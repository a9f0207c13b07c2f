use std::sync::Mutex;

use async_trait::async_trait;
use components_core::Component;
use components_core::pubsub::{Handler, PubSubError, Subscribe, Subscription};
use serde_json::json;

use super::*;

/// A broker that only records what is published to it (the dead letters).
#[derive(Default)]
struct Recorder {
    published: Mutex<Vec<Publish>>,
    fail: bool,
}

#[async_trait]
impl Component for Recorder {}

#[async_trait]
impl PubSub for Recorder {
    async fn publish(&self, p: Publish) -> Result<(), PubSubError> {
        if self.fail {
            return Err(PubSubError::Backend("down".into()));
        }
        self.published.lock().unwrap().push(p);
        Ok(())
    }

    async fn subscribe(
        &self,
        _: Subscribe,
        _: Handler,
    ) -> Result<Box<dyn Subscription>, PubSubError> {
        Err(PubSubError::Closed)
    }
}

/// A subscriber that answers as told and keeps what it got.
struct Answer {
    answer: Delivered,
    got: Mutex<Vec<SubscribedMessage>>,
}

#[async_trait]
impl Postman for Answer {
    async fn deliver(&self, msg: &SubscribedMessage) -> Delivered {
        self.got.lock().unwrap().push(msg.clone());
        self.answer.clone()
    }
}

struct Fixture {
    handler: TopicHandler,
    postman: Arc<Answer>,
    broker: Arc<Recorder>,
}

fn fixture(
    answer: Delivered,
    dlq: &str,
    rules: Vec<Rule>,
    raw: Option<&str>,
    fail: bool,
) -> Fixture {
    let postman = Arc::new(Answer {
        answer,
        got: Mutex::default(),
    });
    let broker = Arc::new(Recorder {
        fail,
        ..Default::default()
    });
    Fixture {
        handler: TopicHandler {
            pubsub_name: "pubsub".into(),
            rules,
            dead_letter_topic: dlq.into(),
            raw_payload: raw.map(str::to_string),
            postman: postman.clone(),
            broker: broker.clone(),
            policy: None,
        },
        postman,
        broker,
    }
}

fn message(body: serde_json::Value) -> Message {
    Message {
        topic: "orders".into(),
        data: Bytes::from(serde_json::to_vec(&body).unwrap()),
        content_type: Some("application/cloudevents+json".into()),
        metadata: HashMap::from([("traceparent".to_string(), "tp-from-broker".to_string())]),
    }
}

fn default_rules() -> Vec<Rule> {
    vec![Rule::default_route("/orders")]
}

#[tokio::test]
async fn success_acknowledges_and_the_app_gets_the_original_bytes() {
    let f = fixture(Delivered::Success, "", default_rules(), None, false);
    let msg = message(json!({"id": "1", "data": {"a": 1}}));
    assert_eq!(f.handler.handle(msg.clone()).await, Delivery::Success);
    let got = f.postman.got.lock().unwrap();
    assert_eq!(got[0].data, msg.data);
    assert_eq!(got[0].path, "/orders");
    assert_eq!(got[0].metadata[PUBSUB_KEY], "pubsub");
    assert_eq!(
        got[0].metadata["content-type"],
        "application/cloudevents+json"
    );
    assert_eq!(
        got[0].cloud_event["traceparent"], "tp-from-broker",
        "filled from metadata"
    );
    assert_eq!(got[0].cloud_event["traceid"], "tp-from-broker");
}

#[tokio::test]
async fn retry_without_dead_letter_goes_back_to_the_broker() {
    let f = fixture(
        Delivered::Retry("no".into()),
        "",
        default_rules(),
        None,
        false,
    );
    assert_eq!(
        f.handler.handle(message(json!({"id": "1"}))).await,
        Delivery::Retry
    );
    assert!(f.broker.published.lock().unwrap().is_empty());
}

#[tokio::test]
async fn retry_and_drop_with_dead_letter_publish_the_message_as_it_came() {
    for answer in [Delivered::Retry("no".into()), Delivered::Drop] {
        let f = fixture(answer, "dead", default_rules(), None, false);
        let msg = message(json!({"id": "1"}));
        assert_eq!(f.handler.handle(msg.clone()).await, Delivery::Success);
        let dl = f.broker.published.lock().unwrap();
        assert_eq!(dl.len(), 1);
        assert_eq!(dl[0].topic, "dead");
        assert_eq!(dl[0].data, msg.data);
    }
}

#[tokio::test]
async fn a_dead_letter_that_fails_leaves_the_message_to_redelivery() {
    let f = fixture(Delivered::Drop, "dead", default_rules(), None, true);
    assert_eq!(
        f.handler.handle(message(json!({"id": "1"}))).await,
        Delivery::Retry
    );
    let f = fixture(
        Delivered::Retry("x".into()),
        "dead",
        default_rules(),
        None,
        true,
    );
    assert_eq!(
        f.handler.handle(message(json!({"id": "1"}))).await,
        Delivery::Retry
    );
}

#[tokio::test]
async fn drop_without_dead_letter_acknowledges() {
    let f = fixture(Delivered::Drop, "", default_rules(), None, false);
    assert_eq!(
        f.handler.handle(message(json!({"id": "1"}))).await,
        Delivery::Success
    );
}

#[tokio::test]
async fn expired_unrouted_and_unparsable_events_are_not_delivered() {
    let f = fixture(Delivered::Success, "", default_rules(), None, false);
    let expired = message(json!({"id": "1", "expiration": "2000-01-01T00:00:00Z"}));
    assert_eq!(f.handler.handle(expired).await, Delivery::Success);
    let rules = vec![Rule::new("event.type == \"x\"", "/x").unwrap()];
    let f2 = fixture(Delivered::Success, "", rules, None, false);
    assert_eq!(
        f2.handler.handle(message(json!({"type": "y"}))).await,
        Delivery::Success
    );
    let garbage = Message {
        data: Bytes::from_static(b"not json"),
        ..message(json!({}))
    };
    assert_eq!(f.handler.handle(garbage).await, Delivery::Retry);
    assert!(f.postman.got.lock().unwrap().is_empty());
    assert!(f2.postman.got.lock().unwrap().is_empty());
}

#[tokio::test]
async fn rules_choose_the_path() {
    let rules = vec![
        Rule::new("event.data.kind == \"big\"", "/big").unwrap(),
        Rule::default_route("/small"),
    ];
    let f = fixture(Delivered::Success, "", rules, None, false);
    f.handler
        .handle(message(json!({"data": {"kind": "big"}})))
        .await;
    f.handler
        .handle(message(json!({"data": {"kind": "tiny"}})))
        .await;
    let got = f.postman.got.lock().unwrap();
    assert_eq!(
        (got[0].path.as_str(), got[1].path.as_str()),
        ("/big", "/small")
    );
}

#[tokio::test]
async fn raw_payloads_are_wrapped_and_bad_raw_flags_are_undeliverable() {
    let f = fixture(Delivered::Success, "", default_rules(), Some("true"), false);
    let msg = Message {
        topic: "orders".into(),
        data: Bytes::from_static(b"\x00raw"),
        content_type: None,
        metadata: HashMap::new(),
    };
    assert_eq!(f.handler.handle(msg.clone()).await, Delivery::Success);
    {
        let got = f.postman.got.lock().unwrap();
        assert_eq!(got[0].cloud_event["data_base64"], "AHJhdw==");
        assert_eq!(
            got[0].cloud_event["datacontenttype"],
            "application/octet-stream"
        );
        assert_eq!(got[0].cloud_event["source"], "Dapr");
        let body: serde_json::Value = serde_json::from_slice(&got[0].data).unwrap();
        assert_eq!(
            body["data_base64"], "AHJhdw==",
            "the app gets the synthesized event"
        );
    }
    let bad = fixture(
        Delivered::Success,
        "dead",
        default_rules(),
        Some("maybe"),
        false,
    );
    assert_eq!(bad.handler.handle(msg).await, Delivery::Success);
    assert_eq!(
        bad.broker.published.lock().unwrap().len(),
        1,
        "dead-lettered"
    );
    assert!(bad.postman.got.lock().unwrap().is_empty());
}
