//! The subscribe side of pub/sub: which topics this sidecar listens to (declared in
//! `Subscription` resources, asked of the app, or opened by a streaming client), the
//! broker subscriptions kept open for them, and each message's way to the subscriber.
//!
//! Per pub/sub and topic one subscription delivers to the app: the first declarative one,
//! replaced by the app's own when it has one, as in Dapr. Streaming subscriptions come on
//! top, each with its own broker subscription.

pub mod app;
mod handler;
pub mod postman;
pub mod rules;
pub mod stream;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use channel::AppChannel;
use components_core::pubsub::{Handler, PubSub, Subscribe, Subscription};
use tokio::sync::Mutex;

pub use handler::PUBSUB_KEY;
use handler::TopicHandler;
use postman::{AppPostman, Postman};
use rules::Rule;

use super::PubSubBlock;

/// Where a subscription came from, as the metadata API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Declarative,
    Programmatic,
    Streaming,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Declarative => "DECLARATIVE",
            Kind::Programmatic => "PROGRAMMATIC",
            Kind::Streaming => "STREAMING",
        }
    }
}

/// Batch delivery settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkSubscribe {
    pub enabled: bool,
    pub max_messages_count: i32,
    pub max_await_duration_ms: i32,
}

/// One subscription to a topic, whatever its source.
#[derive(Debug, Clone)]
pub struct TopicSubscription {
    /// The resource's name, for a declarative subscription.
    pub name: Option<String>,
    pub pubsub: String,
    pub topic: String,
    /// Passed to the broker's subscribe (`rawPayload`, broker options).
    pub metadata: HashMap<String, String>,
    /// In order; the default route last.
    pub rules: Vec<Rule>,
    pub dead_letter_topic: String,
    pub bulk: BulkSubscribe,
    pub kind: Kind,
    /// App ids a declarative subscription is for; empty means every app.
    pub scopes: Vec<String>,
}

/// Who an open broker subscription delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    App,
    Stream(u64),
}

struct Open {
    owner: Owner,
    topic: String,
    subscription: Box<dyn Subscription>,
}

#[derive(Default)]
struct State {
    declarative: Vec<TopicSubscription>,
    /// `None` until the app has been asked.
    programmatic: Option<Vec<TopicSubscription>>,
    streams: Vec<(u64, TopicSubscription, Arc<dyn Postman>)>,
    /// Whether subscriptions to the app are on (from the moment the app is ready).
    app_active: bool,
    open: HashMap<String, Vec<Open>>,
}

/// Keeps the broker subscriptions in line with the wanted ones as brokers come and go.
pub struct Subscriber {
    brokers: Arc<PubSubBlock>,
    app: Option<Arc<AppChannel>>,
    app_id: String,
    /// Programmatic subscriptions are read from the app unless disabled.
    ask_app: bool,
    next_stream: AtomicU64,
    state: Mutex<State>,
}

/// Why a streaming subscription could not start.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("pubsub '{0}' not found")]
    NoPubSub(String),
    #[error("failed to subscribe to topic {topic}: {reason}")]
    Subscribe { topic: String, reason: String },
}

impl Subscriber {
    pub fn new(
        brokers: Arc<PubSubBlock>,
        app: Option<Arc<AppChannel>>,
        app_id: &str,
        ask_app: bool,
    ) -> Self {
        Self {
            brokers,
            app,
            app_id: app_id.to_string(),
            ask_app,
            next_stream: AtomicU64::new(1),
            state: Mutex::default(),
        }
    }

    /// Starts delivering to the app: called once the app is ready.
    pub async fn start_app(&self) {
        let mut st = self.state.lock().await;
        if self.app.is_none() {
            if !st.declarative.is_empty() {
                tracing::warn!(
                    "app channel not initialized, make sure -app-port is specified if pubsub subscription is required"
                );
            }
            return;
        }
        st.app_active = true;
        self.read_app(&mut st).await;
        for name in self.brokers.names() {
            self.restart(&mut st, &name, true).await;
        }
    }

    /// A broker was added, replaced or removed: its subscriptions are opened again on
    /// the current one.
    pub async fn reload(&self, pubsub: &str) {
        let mut st = self.state.lock().await;
        if st.app_active {
            self.read_app(&mut st).await;
        }
        self.restart(&mut st, pubsub, true).await;
    }

    /// The declarative subscriptions changed (already scoped to this app).
    pub async fn set_declarative(&self, subs: Vec<TopicSubscription>) {
        let mut st = self.state.lock().await;
        st.declarative = subs;
        if st.app_active {
            for name in self.brokers.names() {
                self.restart(&mut st, &name, false).await;
            }
        }
    }

    /// Stops every subscription, at shutdown; in-flight messages finish first.
    pub async fn stop_all(&self) {
        let mut st = self.state.lock().await;
        st.app_active = false;
        let open: Vec<Open> = st.open.drain().flat_map(|(_, v)| v).collect();
        futures::future::join_all(open.iter().map(|o| o.subscription.stop())).await;
    }

    /// Opens a streaming subscription delivering to `postman`; the id closes it. Each
    /// stream has a broker subscription of its own, so several streams on one topic
    /// share its messages as replicas do (or each get all, on a broker without groups).
    pub async fn add_stream(
        &self,
        sub: TopicSubscription,
        postman: Arc<dyn Postman>,
    ) -> Result<u64, StreamError> {
        let mut st = self.state.lock().await;
        let broker = self
            .brokers
            .broker(&sub.pubsub)
            .ok_or_else(|| StreamError::NoPubSub(sub.pubsub.clone()))?;
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let open = self
            .open_one(broker, &sub, postman.clone(), Owner::Stream(id))
            .await
            .map_err(|reason| StreamError::Subscribe {
                topic: sub.topic.clone(),
                reason,
            })?;
        st.open.entry(sub.pubsub.clone()).or_default().push(open);
        st.streams.push((id, sub, postman));
        Ok(id)
    }

    /// Closes a streaming subscription.
    pub async fn remove_stream(&self, id: u64) {
        let mut st = self.state.lock().await;
        st.streams.retain(|(i, _, _)| *i != id);
        let mut closing = Vec::new();
        for list in st.open.values_mut() {
            let (gone, keep): (Vec<Open>, Vec<Open>) =
                list.drain(..).partition(|o| o.owner == Owner::Stream(id));
            *list = keep;
            closing.extend(gone);
        }
        drop(st);
        futures::future::join_all(closing.iter().map(|o| o.subscription.stop())).await;
    }

    /// Every subscription, for the metadata API: the declarative ones, the app's, then
    /// the streaming ones, as Dapr lists them.
    pub async fn list(&self) -> Vec<TopicSubscription> {
        let st = self.state.lock().await;
        st.declarative
            .iter()
            .chain(st.programmatic.iter().flatten())
            .chain(st.streams.iter().map(|(_, s, _)| s))
            .cloned()
            .collect()
    }

    /// Reads the app's subscriptions once, when there is a broker to subscribe on.
    async fn read_app(&self, st: &mut State) {
        if st.programmatic.is_some() || self.brokers.names().is_empty() {
            return;
        }
        let Some(app) = &self.app else { return };
        if !self.ask_app {
            tracing::warn!(
                "Skipping programmatic subscription loading (see 'disable-init-endpoints' flag/annotation)"
            );
            st.programmatic = Some(Vec::new());
            return;
        }
        match app::load(app, &self.app_id).await {
            Ok(subs) => {
                let mut topics: HashMap<&str, Vec<&str>> = HashMap::new();
                for s in &subs {
                    topics.entry(&s.pubsub).or_default().push(&s.topic);
                }
                for (pubsub, topics) in topics {
                    tracing::info!(
                        "app is subscribed to the following topics: [{}] through pubsub={pubsub}",
                        topics.join(" ")
                    );
                }
                st.programmatic = Some(subs);
            }
            Err(e) => {
                tracing::error!("{e}");
                st.programmatic = Some(Vec::new());
            }
        }
    }

    /// Closes `pubsub`'s subscriptions (the app's, and the streams' when `streams`) and
    /// opens them again on the broker now loaded under that name, if any.
    async fn restart(&self, st: &mut State, pubsub: &str, streams: bool) {
        let mut closing = Vec::new();
        if let Some(list) = st.open.get_mut(pubsub) {
            let (gone, keep): (Vec<Open>, Vec<Open>) = list
                .drain(..)
                .partition(|o| streams || o.owner == Owner::App);
            *list = keep;
            closing = gone;
        }
        futures::future::join_all(closing.iter().map(|o| o.subscription.stop())).await;
        let Some(broker) = self.brokers.broker(pubsub) else {
            return;
        };
        let mut opened = Vec::new();
        if st.app_active
            && let Some(app) = &self.app
        {
            let postman: Arc<dyn Postman> = Arc::new(AppPostman { app: app.clone() });
            for sub in effective(st, pubsub) {
                match self
                    .open_one(broker.clone(), &sub, postman.clone(), Owner::App)
                    .await
                {
                    Ok(o) => opened.push(o),
                    Err(e) => tracing::error!(
                        "Failed to start subscription for pubsub {pubsub}, topic {}: {e}",
                        sub.topic
                    ),
                }
            }
        }
        if streams {
            for (id, sub, postman) in st.streams.iter().filter(|(_, s, _)| s.pubsub == pubsub) {
                match self
                    .open_one(broker.clone(), sub, postman.clone(), Owner::Stream(*id))
                    .await
                {
                    Ok(o) => opened.push(o),
                    Err(e) => tracing::error!(
                        "Failed to start streaming subscription for pubsub {pubsub}, topic {}: {e}",
                        sub.topic
                    ),
                }
            }
        }
        st.open
            .entry(pubsub.to_string())
            .or_default()
            .extend(opened);
    }

    async fn open_one(
        &self,
        broker: Arc<dyn PubSub>,
        sub: &TopicSubscription,
        postman: Arc<dyn Postman>,
        owner: Owner,
    ) -> Result<Open, String> {
        if !self.brokers.may_subscribe(&sub.pubsub, &sub.topic) {
            return Err(format!(
                "subscription to topic '{}' on pubsub '{}' is not allowed",
                sub.topic, sub.pubsub
            ));
        }
        let handler = Arc::new(TopicHandler {
            pubsub_name: sub.pubsub.clone(),
            rules: sub.rules.clone(),
            dead_letter_topic: sub.dead_letter_topic.clone(),
            raw_payload: sub
                .metadata
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("rawPayload"))
                .map(|(_, v)| v.clone()),
            postman,
            broker: broker.clone(),
            policy: self.brokers.inbound_policy(&sub.pubsub),
        });
        let on_message: Handler = Arc::new(move |msg| {
            let handler = handler.clone();
            Box::pin(async move { handler.handle(msg).await })
        });
        let subscription = broker
            .subscribe(
                Subscribe {
                    topic: sub.topic.clone(),
                    metadata: sub.metadata.clone(),
                },
                on_message,
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(Open {
            owner,
            topic: sub.topic.clone(),
            subscription,
        })
    }
}

/// The subscriptions delivering `pubsub`'s topics to the app: per topic the first
/// declarative one, replaced by the app's own.
fn effective(st: &State, pubsub: &str) -> Vec<TopicSubscription> {
    let mut out: Vec<TopicSubscription> = Vec::new();
    let mut taken: HashMap<&str, usize> = HashMap::new();
    for s in st.declarative.iter().filter(|s| s.pubsub == pubsub) {
        if !taken.contains_key(s.topic.as_str()) {
            taken.insert(&s.topic, out.len());
            out.push(s.clone());
        }
    }
    for s in st
        .programmatic
        .iter()
        .flatten()
        .filter(|s| s.pubsub == pubsub)
    {
        match taken.get(s.topic.as_str()) {
            Some(&i) => out[i] = s.clone(),
            None => {
                taken.insert(&s.topic, out.len());
                out.push(s.clone());
            }
        }
    }
    out
}

impl std::fmt::Debug for Open {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Open")
            .field("owner", &self.owner)
            .field("topic", &self.topic)
            .finish()
    }
}
