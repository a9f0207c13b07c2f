//! `state.in-memory`: the embedded default. Values live in the sidecar's heap and vanish
//! with it; ETags are a process-wide counter so a stale one can never match again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use async_trait::async_trait;

use components_core::state::{
    DeleteRequest, Features, GetRequest, Item, Operation, Query, QueryResponse, SetRequest,
    StateError, StateStore,
};
use components_core::{Component, ComponentError};

/// How often expired entries are removed; reads never see them in between.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<String, Item>>,
    next_etag: AtomicU64,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Item>> {
        // A panic while holding the lock cannot leave a half-applied write behind (every
        // mutation is a single insert/remove), so a poisoned map is still consistent.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_etag(&self) -> String {
        (self.next_etag.fetch_add(1, Ordering::Relaxed) + 1).to_string()
    }

    /// Creates a store whose expired entries are swept once a second by a background task
    /// that ends when the store is dropped.
    pub fn with_sweeper() -> std::sync::Arc<Self> {
        let store = std::sync::Arc::new(Self::new());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak = std::sync::Arc::downgrade(&store);
            rt.spawn(async move {
                let mut tick = tokio::time::interval(SWEEP_INTERVAL);
                loop {
                    tick.tick().await;
                    let Some(store) = weak.upgrade() else { break };
                    store.sweep();
                }
            });
        }
        store
    }

    fn sweep(&self) {
        let now = SystemTime::now();
        self.lock().retain(|_, item| !expired(item, now));
    }

    fn prepare_set(&self, current: Option<&Item>, req: &SetRequest) -> Result<Item, StateError> {
        check_etag(current, req.etag.as_deref(), req.concurrency, &req.key)?;
        Ok(Item {
            data: req.value.clone(),
            etag: Some(self.new_etag()),
            expires_at: req.ttl.duration().map(|ttl| SystemTime::now() + ttl),
        })
    }
}

fn expired(item: &Item, now: SystemTime) -> bool {
    item.expires_at.is_some_and(|t| t <= now)
}

fn live<'a>(map: &'a HashMap<String, Item>, key: &str) -> Option<&'a Item> {
    map.get(key)
        .filter(|item| !expired(item, SystemTime::now()))
}

fn check_etag(
    current: Option<&Item>,
    etag: Option<&str>,
    concurrency: components_core::state::Concurrency,
    key: &str,
) -> Result<(), StateError> {
    // Like Dapr's in-memory store, with its words: an ETag that is not one of ours is a
    // mismatch, and so is any ETag for a key that is not there.
    match etag.filter(|e| !e.is_empty()) {
        Some(e) => match current {
            None => Err(StateError::EtagMismatch(format!(
                "state not exist or expired for key={key}"
            ))),
            Some(item) => match item.etag.as_deref() {
                Some(stored) if stored == e => Ok(()),
                Some(stored) => Err(StateError::EtagMismatch(format!(
                    "state etag not match for key={key}: current={stored}, expect={e}"
                ))),
                None => Err(StateError::EtagMismatch(format!(
                    "state etag not match for key={key}: current=nil, expect={e}"
                ))),
            },
        },
        None if concurrency == components_core::state::Concurrency::FirstWrite
            && current.is_some() =>
        {
            Err(StateError::EtagMismatch(
                "item already exists and no etag was passed".to_string(),
            ))
        }
        None => Ok(()),
    }
}

#[async_trait]
impl Component for MemoryStore {
    /// Lets go of the values at once rather than when the last in-flight call ends.
    async fn close(&self) -> Result<(), ComponentError> {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).clear();
        Ok(())
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    fn features(&self) -> Features {
        Features {
            etag: true,
            transactional: true,
            ttl: true,
            query: true,
        }
    }

    async fn get(&self, req: &GetRequest) -> Result<Option<Item>, StateError> {
        Ok(live(&self.lock(), &req.key).cloned())
    }

    async fn set(&self, req: &SetRequest) -> Result<(), StateError> {
        let mut map = self.lock();
        let item = self.prepare_set(live(&map, &req.key), req)?;
        map.insert(req.key.clone(), item);
        Ok(())
    }

    async fn delete(&self, req: &DeleteRequest) -> Result<(), StateError> {
        let mut map = self.lock();
        check_etag(
            live(&map, &req.key),
            req.etag.as_deref(),
            Default::default(),
            &req.key,
        )?;
        map.remove(&req.key);
        Ok(())
    }

    async fn transact(&self, ops: &[Operation]) -> Result<(), StateError> {
        let mut map = self.lock();
        // Stage every change against a private view first; the shared map is touched only
        // once all operations have passed their checks.
        let mut staged: HashMap<&str, Option<Item>> = HashMap::new();
        for op in ops {
            let key = op.key();
            let current = match staged.get(key) {
                Some(v) => v.as_ref(),
                None => live(&map, key),
            };
            let next = match op {
                Operation::Set(req) => Some(self.prepare_set(current, req)?),
                Operation::Delete(req) => {
                    check_etag(current, req.etag.as_deref(), Default::default(), key)?;
                    None
                }
            };
            staged.insert(key, next);
        }
        for (key, value) in staged {
            match value {
                Some(item) => map.insert(key.to_string(), item),
                None => map.remove(key),
            };
        }
        Ok(())
    }

    /// Dapr's in-memory store has no query API. This one evaluates queries in-process so
    /// that an app developed against the embedded default can use the query API it will
    /// later run against PostgreSQL; the capability is reported, so nothing is hidden.
    async fn query(&self, key_prefix: &str, query: &Query) -> Result<QueryResponse, StateError> {
        let now = SystemTime::now();
        let rows: Vec<_> = self
            .lock()
            .iter()
            .filter(|(k, item)| k.starts_with(key_prefix) && !expired(item, now))
            .map(|(k, item)| (k.clone(), item.data.clone(), item.etag.clone()))
            .collect();
        Ok(query.run_in_memory(rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sweeper_removes_expired_entries() {
        let store = MemoryStore::with_sweeper();
        let req = SetRequest {
            key: "k".into(),
            ttl: components_core::state::Ttl::After(std::time::Duration::from_secs(1)),
            ..Default::default()
        };
        store.set(&req).await.expect("set");
        assert_eq!(store.lock().len(), 1);
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        assert_eq!(store.lock().len(), 0, "expired entry still held in memory");
    }

    #[tokio::test]
    async fn passes_conformance() {
        let store = MemoryStore::new();
        components_core::testing::state::run(&store).await;
    }
}
