//! A watched copy of one kind's objects across all namespaces, plus a feed of what changed.
//! The operator answers list calls from here and turns the feed into update streams, so a
//! thousand sidecars cost one watch on the API server.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::{broadcast, watch};

use crate::kinds::Kind;

/// How many changes a slow subscriber may fall behind before its stream is ended (the
/// sidecar then reconnects and lists again).
const FEED_CAPACITY: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Created,
    Updated,
    Deleted,
}

#[derive(Debug)]
pub struct Change {
    pub namespace: String,
    pub change: ChangeType,
    pub object: Arc<DynamicObject>,
    /// The change as sent on the wire, made once by the first stream that sends it and
    /// shared by every other subscriber (for components it includes resolving secrets).
    pub encoded: tokio::sync::OnceCell<Vec<u8>>,
}

type Key = (String, String);

pub struct Cache {
    pub kind: Kind,
    objects: RwLock<BTreeMap<Key, Arc<DynamicObject>>>,
    feed: broadcast::Sender<Arc<Change>>,
    synced: watch::Sender<bool>,
}

fn key(o: &DynamicObject) -> Key {
    (
        o.metadata.namespace.clone().unwrap_or_default(),
        o.metadata.name.clone().unwrap_or_default(),
    )
}

impl Cache {
    pub fn new(kind: Kind) -> Arc<Self> {
        Arc::new(Self {
            kind,
            objects: RwLock::new(BTreeMap::new()),
            feed: broadcast::channel(FEED_CAPACITY).0,
            synced: watch::channel(false).0,
        })
    }

    /// The objects of one namespace, in name order.
    pub fn list(&self, namespace: &str) -> Vec<Arc<DynamicObject>> {
        let objects = self.objects.read().unwrap_or_else(|p| p.into_inner());
        objects
            .range((namespace.to_string(), String::new())..)
            .take_while(|((ns, _), _)| ns == namespace)
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// Every namespace's objects.
    pub fn all(&self) -> Vec<Arc<DynamicObject>> {
        let objects = self.objects.read().unwrap_or_else(|p| p.into_inner());
        objects.values().cloned().collect()
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<DynamicObject>> {
        let objects = self.objects.read().unwrap_or_else(|p| p.into_inner());
        objects
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.feed.subscribe()
    }

    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits until the first full list has arrived, so nobody is served an empty list
    /// just because the operator started a moment ago.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    fn publish(&self, object: Arc<DynamicObject>, change: ChangeType) {
        let namespace = object.metadata.namespace.clone().unwrap_or_default();
        // No subscribers is not an error.
        let _ = self.feed.send(Arc::new(Change {
            namespace,
            change,
            object,
            encoded: tokio::sync::OnceCell::new(),
        }));
    }

    fn apply(&self, object: DynamicObject) {
        let k = key(&object);
        let object = Arc::new(object);
        let previous = {
            let mut objects = self.objects.write().unwrap_or_else(|p| p.into_inner());
            objects.insert(k, object.clone())
        };
        match previous {
            None => self.publish(object, ChangeType::Created),
            Some(p) if p.metadata.resource_version != object.metadata.resource_version => {
                self.publish(object, ChangeType::Updated)
            }
            Some(_) => {}
        }
    }

    fn delete(&self, object: &DynamicObject) {
        let removed = {
            let mut objects = self.objects.write().unwrap_or_else(|p| p.into_inner());
            objects.remove(&key(object))
        };
        if let Some(o) = removed {
            self.publish(o, ChangeType::Deleted);
        }
    }

    /// After a (re)list, whatever was not listed is gone.
    fn prune(&self, listed: &HashSet<Key>) {
        let gone: Vec<Arc<DynamicObject>> = {
            let mut objects = self.objects.write().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<Key> = objects
                .keys()
                .filter(|k| !listed.contains(*k))
                .cloned()
                .collect();
            keys.iter().filter_map(|k| objects.remove(k)).collect()
        };
        for o in gone {
            self.publish(o, ChangeType::Deleted);
        }
    }

    /// Follows the kind on the API server for as long as the operator runs; the watcher
    /// retries with backoff on its own.
    pub async fn run(self: Arc<Self>, api: Api<DynamicObject>) {
        let config = watcher::Config::default();
        let stream = watcher::watcher(api, config).default_backoff();
        futures::pin_mut!(stream);
        let mut listed: HashSet<Key> = HashSet::new();
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => listed.clear(),
                Ok(Event::InitApply(o)) => {
                    listed.insert(key(&o));
                    self.apply(o);
                }
                Ok(Event::InitDone) => {
                    self.prune(&listed);
                    listed.clear();
                    self.synced.send_replace(true);
                }
                Ok(Event::Apply(o)) => self.apply(o),
                Ok(Event::Delete(o)) => self.delete(&o),
                Err(e) => tracing::warn!(kind = self.kind.kind, "watch failed: {e}"),
            }
        }
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
pub(crate) mod tests;
