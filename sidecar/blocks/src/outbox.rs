//! The transactional outbox: a state store with `outboxPublishPubsub` and
//! `outboxPublishTopic` publishes each upsert of a transaction as a message, the state
//! change and the message both happening or neither, as Dapr does it. Before the
//! transaction commits, each upsert becomes an internal message (on `outboxPubsub`, topic
//! `<namespace><appId><topic>outbox`) and the transaction gains a marker key; the internal
//! subscriber forwards a message to the real topic only once its marker is in the store
//! (the transaction committed), then deletes the marker. An upsert marked
//! `outbox.projection: "true"` is what is published for its key, and is not stored.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use components_core::pubsub::{Delivery, Handler, Message, Publish, Subscribe, Subscription};
use http::StatusCode;
use serde_json::Value;

use crate::errors::{Code, DaprError};
use crate::pubsub::{CLOUDEVENT_CONTENT_TYPE, EnvelopeInput, PubSubBlock, envelope};
use crate::state::{Consistency, DeleteItem, Options, SaveItem, StateBlock, TxOp};

/// How long the internal subscriber waits before looking for a marker (Dapr's scan delay).
const SCAN_DELAY: Duration = Duration::from_millis(500);
/// How long it keeps looking before it gives up on a message.
const MARKER_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Config {
    publish_pubsub: String,
    publish_topic: String,
    outbox_pubsub: String,
    discard_when_missing: bool,
}

/// The outbox configurations by state store, and the internal subscriptions.
pub struct Outbox {
    pubsub: Arc<PubSubBlock>,
    app_id: String,
    namespace: String,
    configs: RwLock<HashMap<String, Config>>,
    running: tokio::sync::Mutex<Vec<Box<dyn Subscription>>>,
}

fn outbox_error(why: &str) -> DaprError {
    DaprError::new(
        "ERR_PUBSUB_OUTBOX",
        format!("error while publishing outbox message: {why}"),
        StatusCode::INTERNAL_SERVER_ERROR,
        Code::Internal,
    )
    .rich("DAPR_PUBSUB_OUTBOX")
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "1" | "t" | "y" | "yes" | "on"
    )
}

impl Outbox {
    pub fn new(pubsub: Arc<PubSubBlock>, app_id: &str, namespace: &str) -> Self {
        Self {
            pubsub,
            app_id: app_id.to_string(),
            namespace: namespace.to_string(),
            configs: RwLock::default(),
            running: tokio::sync::Mutex::default(),
        }
    }

    /// Reads a state store's outbox metadata (none when the two keys are not both set).
    pub fn configure(&self, store: &str, get: impl Fn(&str) -> Option<String>) {
        let (Some(publish_pubsub), Some(publish_topic)) =
            (get("outboxPublishPubsub"), get("outboxPublishTopic"))
        else {
            self.remove(store);
            return;
        };
        let outbox_pubsub = get("outboxPubsub").unwrap_or_else(|| publish_pubsub.clone());
        let config = Config {
            publish_pubsub,
            publish_topic,
            outbox_pubsub,
            discard_when_missing: get("outboxDiscardWhenMissingState").is_some_and(|v| truthy(&v)),
        };
        if let Ok(mut c) = self.configs.write() {
            c.insert(store.to_string(), config);
        }
    }

    pub fn remove(&self, store: &str) {
        if let Ok(mut c) = self.configs.write() {
            c.remove(store);
        }
    }

    fn config(&self, store: &str) -> Option<Config> {
        self.configs.read().ok()?.get(store).cloned()
    }

    pub fn enabled(&self, store: &str) -> bool {
        self.config(store).is_some()
    }

    fn internal_topic(&self, topic: &str) -> String {
        format!("{}{}{topic}outbox", self.namespace, self.app_id)
    }

    /// Publishes the internal message of each upsert and returns the operations to commit:
    /// projections taken out, one marker upsert per message added.
    pub async fn prepare(
        &self,
        store: &str,
        ops: Vec<TxOp>,
        traceparent: &str,
    ) -> Result<Vec<TxOp>, DaprError> {
        let config = self.config(store).ok_or_else(|| {
            outbox_error(&format!(
                "could not find outbox configuration on state store {store}"
            ))
        })?;
        let broker = self
            .pubsub
            .broker(&config.outbox_pubsub)
            .ok_or_else(|| outbox_error(&format!("pubsub {} not found", config.outbox_pubsub)))?;
        let is_projection = |op: &TxOp| matches!(op, TxOp::Upsert(i) if i.metadata.get("outbox.projection").is_some_and(|v| truthy(v)));
        let (projections, mut ops): (Vec<TxOp>, Vec<TxOp>) =
            ops.into_iter().partition(is_projection);
        let projections: HashMap<String, SaveItem> = projections
            .into_iter()
            .filter_map(|op| match op {
                TxOp::Upsert(i) => Some((i.key.clone(), i)),
                TxOp::Delete(_) => None,
            })
            .collect();
        let mut markers = Vec::new();
        for op in &ops {
            let TxOp::Upsert(item) = op else { continue };
            let source = projections.get(&item.key).unwrap_or(item);
            let marker = format!("outbox-{}", uuid::Uuid::new_v4());
            let content_type = source.metadata.get("contentType").cloned();
            let data = payload(source);
            let mut ce = envelope(
                &EnvelopeInput {
                    app_id: &self.app_id,
                    pubsub: &config.outbox_pubsub,
                    topic: "",
                    data: &data,
                    content_type: content_type.as_deref(),
                    metadata: &HashMap::from([("cloudevent.id".to_string(), marker.clone())]),
                    traceparent,
                    tracestate: "",
                    broker_has_ttl: true,
                },
                SystemTime::now(),
            )
            .map_err(|e| outbox_error(&e))?;
            for (k, v) in &item.metadata {
                if k != "data" && k != "id" {
                    ce.insert(k.clone(), Value::String(v.clone()));
                }
            }
            let bytes = serde_json::to_vec(&ce).map_err(|e| outbox_error(&e.to_string()))?;
            broker
                .publish(Publish {
                    topic: self.internal_topic(&config.publish_topic),
                    data: Bytes::from(bytes),
                    content_type: Some(CLOUDEVENT_CONTENT_TYPE.to_string()),
                    metadata: HashMap::new(),
                })
                .await
                .map_err(|e| outbox_error(&e.to_string()))?;
            markers.push(TxOp::Upsert(SaveItem {
                key: marker,
                value: Bytes::from_static(b"\"0\""),
                is_json: true,
                etag: None,
                options: Ok(Options::default()),
                metadata: HashMap::new(),
            }));
        }
        ops.extend(markers);
        Ok(ops)
    }

    /// Opens the internal subscription of every outbox-enabled store; called once the
    /// components are loaded.
    pub async fn start(self: &Arc<Self>, state: Arc<StateBlock>) {
        let configs: Vec<(String, Config)> = self
            .configs
            .read()
            .map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let mut running = self.running.lock().await;
        for (store, config) in configs {
            let Some(broker) = self.pubsub.broker(&config.outbox_pubsub) else {
                tracing::warn!(
                    "could not subscribe to internal outbox topic: outbox pubsub {} not loaded",
                    config.outbox_pubsub
                );
                continue;
            };
            let topic = self.internal_topic(&config.publish_topic);
            let me = self.clone();
            let state = state.clone();
            let handler: Handler = Arc::new(move |msg: Message| {
                let (me, state, store, config) =
                    (me.clone(), state.clone(), store.clone(), config.clone());
                Box::pin(async move { me.forward(&state, &store, &config, msg).await })
            });
            match broker
                .subscribe(
                    Subscribe {
                        topic,
                        metadata: HashMap::new(),
                    },
                    handler,
                )
                .await
            {
                Ok(s) => running.push(s),
                Err(e) => tracing::error!("could not subscribe to internal outbox topic: {e}"),
            }
        }
    }

    /// Stops the internal subscriptions, at shutdown.
    pub async fn stop(&self) {
        let running: Vec<_> = self.running.lock().await.drain(..).collect();
        futures::future::join_all(running.iter().map(|s| s.stop())).await;
    }

    async fn forward(
        &self,
        state: &StateBlock,
        store: &str,
        config: &Config,
        msg: Message,
    ) -> Delivery {
        let Ok(mut ce) = serde_json::from_slice::<serde_json::Map<String, Value>>(&msg.data) else {
            return Delivery::Drop;
        };
        let marker = ce
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        tokio::time::sleep(SCAN_DELAY).await;
        let deadline = Instant::now() + MARKER_WAIT;
        let mut pause = Duration::from_millis(500);
        loop {
            match state
                .get(store, &marker, Consistency::Strong, HashMap::new())
                .await
            {
                Ok(Some(v)) if !v.data.is_empty() => break,
                _ if Instant::now() >= deadline => {
                    if config.discard_when_missing {
                        tracing::error!(
                            "failed to publish outbox topic to pubsub {}: outbox state not found, discarding message",
                            config.publish_pubsub
                        );
                        return Delivery::Success;
                    }
                    tracing::error!(
                        "failed to publish outbox topic to pubsub {}: outbox state not found, rejecting for later processing",
                        config.publish_pubsub
                    );
                    return Delivery::Retry;
                }
                _ => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 3).min(Duration::from_secs(3));
                }
            }
        }
        ce.insert("topic".into(), Value::String(config.publish_topic.clone()));
        ce.insert(
            "pubsubname".into(),
            Value::String(config.publish_pubsub.clone()),
        );
        let content_type = ce
            .get("datacontenttype")
            .and_then(Value::as_str)
            .map(str::to_string);
        let Some(target) = self.pubsub.broker(&config.publish_pubsub) else {
            tracing::error!("outbox: pubsub {} not found", config.publish_pubsub);
            return Delivery::Retry;
        };
        let data = match serde_json::to_vec(&ce) {
            Ok(d) => Bytes::from(d),
            Err(_) => return Delivery::Drop,
        };
        if let Err(e) = target
            .publish(Publish {
                topic: config.publish_topic.clone(),
                data,
                content_type,
                metadata: HashMap::new(),
            })
            .await
        {
            tracing::error!("outbox: publishing to {}: {e}", config.publish_topic);
            return Delivery::Retry;
        }
        let delete = TxOp::Delete(DeleteItem {
            key: marker,
            etag: None,
            options: Options::default(),
            metadata: HashMap::new(),
        });
        if let Err(e) = state.transact_plain(store, vec![delete]).await {
            tracing::warn!("outbox: the marker was not deleted: {e}");
        }
        Delivery::Success
    }
}

/// The bytes published for an upsert: its raw bytes, or the JSON it holds (a JSON string
/// as its text, as Dapr prints one).
fn payload(item: &SaveItem) -> Vec<u8> {
    if !item.is_json {
        return item.value.to_vec();
    }
    match serde_json::from_slice::<Value>(&item.value) {
        Ok(Value::String(s)) => s.into_bytes(),
        _ => item.value.to_vec(),
    }
}
