//! The state management building block: resolves the store, applies the key scheme and
//! request options, calls the component, and turns its failures into Dapr's errors.

pub mod errors;
mod keys;

use std::collections::HashMap;

use crate::table::Table;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};

use crate::errors::DaprError;
use components_core::Properties;
use components_core::state::{
    DeleteRequest, GetRequest, Operation, Query, SetRequest, StateStore, parse_ttl,
};

pub use components_core::state::{Concurrency, Consistency, StateError};
pub use keys::{KeyPrefixError, SEPARATOR, original_key, prefix_for};

/// At most this many store calls of one bulk request run at once, whatever the caller
/// asks: a request must not be able to open unbounded work on the backend.
const MAX_PARALLELISM: usize = 64;

/// A loaded state store with the prefix its keys are stored under.
pub struct StoreEntry {
    /// The component's name, which errors about it carry.
    name: String,
    pub store: Arc<dyn StateStore>,
    prefix: Option<String>,
}

impl StoreEntry {
    pub fn new(name: &str, store: Arc<dyn StateStore>, prefix: Option<String>) -> Self {
        Self {
            name: name.to_string(),
            store,
            prefix,
        }
    }

    fn stored_key(&self, key: &str) -> Result<String, DaprError> {
        if key.contains(SEPARATOR) {
            return Err(errors::illegal_key(&self.name, key));
        }
        Ok(match &self.prefix {
            Some(p) => {
                let mut k = String::with_capacity(p.len() + key.len());
                k.push_str(p);
                k.push_str(key);
                k
            }
            None => key.to_string(),
        })
    }
}

/// `concurrency` and `consistency` as callers send them (`first-write`, `strong`, ...).
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub concurrency: Concurrency,
    pub consistency: Consistency,
}

impl Options {
    /// Parses Dapr's option strings; empty means the default. Like Dapr's stores, an
    /// unknown model is a failure of the operation (500), not a malformed request.
    /// Consistency is checked first, as Dapr's stores do.
    pub fn parse(concurrency: &str, consistency: &str) -> Result<Self, StateError> {
        let consistency = match consistency {
            "" | "eventual" => Consistency::Eventual,
            "strong" => Consistency::Strong,
            other => {
                return Err(StateError::InvalidRequest(format!(
                    "unrecognized consistency model '{other}'"
                )));
            }
        };
        let concurrency = match concurrency {
            "" | "last-write" => Concurrency::LastWrite,
            "first-write" => Concurrency::FirstWrite,
            other => {
                return Err(StateError::InvalidRequest(format!(
                    "unrecognized concurrency model '{other}'"
                )));
            }
        };
        Ok(Self {
            concurrency,
            consistency,
        })
    }
}

/// One value to save.
#[derive(Debug, Clone)]
pub struct SaveItem {
    pub key: String,
    pub value: Bytes,
    /// See [`SetRequest::is_json`].
    pub is_json: bool,
    pub etag: Option<String>,
    /// The item's options, or why they could not be read: as in Dapr, a bad option fails
    /// this item in the store, alongside the others, rather than the whole request.
    pub options: Result<Options, StateError>,
    pub metadata: HashMap<String, String>,
}

/// One key to delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteItem {
    pub key: String,
    pub etag: Option<String>,
    pub options: Options,
    pub metadata: HashMap<String, String>,
}

/// A transaction step as the API names it.
#[derive(Debug, Clone)]
pub enum TxOp {
    Upsert(SaveItem),
    Delete(DeleteItem),
}

/// A value read back, with the response metadata Dapr adds (`ttlExpireTime`).
#[derive(Debug, Clone)]
pub struct StateValue {
    pub data: Bytes,
    pub etag: Option<String>,
    pub metadata: HashMap<String, String>,
}

/// One entry of a bulk get: a value, nothing (missing key), or a per-key error.
#[derive(Debug, Clone)]
pub struct BulkItem {
    pub key: String,
    pub value: Option<StateValue>,
    pub error: Option<String>,
}

/// A query result with keys given back in the caller's form.
#[derive(Debug, Clone)]
pub struct QueryItem {
    pub key: String,
    pub data: Bytes,
    pub etag: Option<String>,
}

pub struct StateBlock {
    app_id: String,
    /// `NAMESPACE` as the sidecar was started with, for the `namespace` key prefix; unset
    /// means the app id alone, as in Dapr.
    namespace: Option<String>,
    /// Swapped whole when a component is added, changed or removed at runtime, so the hot
    /// path reads without a lock.
    stores: Table<Arc<StoreEntry>>,
    /// The transactional outbox, for stores configured with one.
    outbox: std::sync::OnceLock<Arc<crate::outbox::Outbox>>,
}

/// Empty strings mean "no etag" in Dapr.
fn etag_of(etag: Option<String>) -> Option<String> {
    etag.filter(|e| !e.is_empty())
}

/// Of several failures, the one Dapr would report: an ETag conflict first, so callers see
/// 409 rather than a generic 500 when any item lost a race.
fn worst(outcomes: Vec<Result<(), StateError>>) -> Result<(), StateError> {
    let mut first = None;
    for outcome in outcomes {
        match outcome {
            Ok(()) => {}
            Err(e @ StateError::EtagMismatch(_)) => return Err(e),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// Why a request could not be turned into store calls.
enum Invalid {
    /// The request is malformed or names an illegal key.
    Api(DaprError),
    /// A value the store itself would refuse (bad TTL); reported as the operation's failure.
    Store(StateError),
}

impl StateBlock {
    pub fn new(
        app_id: String,
        namespace: Option<String>,
        stores: HashMap<String, StoreEntry>,
    ) -> Self {
        let stores = stores.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        Self {
            app_id,
            namespace,
            stores: Table::new(stores),
            outbox: std::sync::OnceLock::new(),
        }
    }

    /// Adds or replaces a store while the sidecar runs; calls already under way finish on
    /// the store they started with.
    pub fn upsert(&self, name: &str, entry: StoreEntry) {
        self.stores.upsert(name, Arc::new(entry));
    }

    /// Removes a store while the sidecar runs; returns whether it existed.
    pub fn remove(&self, name: &str) -> bool {
        self.stores.remove(name)
    }

    /// Builds the prefix for a store from its component metadata.
    pub fn prefix(
        &self,
        props: &Properties,
        store: &str,
    ) -> Result<Option<String>, KeyPrefixError> {
        prefix_for(props, store, &self.app_id, self.namespace.as_deref())
    }

    fn entry(&self, name: &str) -> Result<Arc<StoreEntry>, DaprError> {
        self.entry_as(name, &self.app_id)
    }

    /// The store `name`, or Dapr's error naming `app_id` (empty: named by no app, as the
    /// query API's errors are).
    fn entry_as(&self, name: &str, app_id: &str) -> Result<Arc<StoreEntry>, DaprError> {
        let stores = self.stores.load();
        if stores.is_empty() {
            return Err(errors::not_configured(name, app_id));
        }
        stores
            .get(name)
            .cloned()
            .ok_or_else(|| errors::not_found(name, app_id))
    }

    /// Fails early on an unknown store, before any body is parsed, as Dapr does.
    pub fn check_store(&self, name: &str) -> Result<(), DaprError> {
        self.entry(name).map(|_| ())
    }

    /// Fails on a key the store cannot take (the store must exist), as Dapr checks each
    /// key of a save before any item reaches the store.
    pub fn check_key(&self, store: &str, key: &str) -> Result<(), DaprError> {
        self.entry(store)?.stored_key(key).map(|_| ())
    }

    /// Whether `store` exists and supports transactions, checked before a body is parsed.
    pub fn check_transactional(&self, store: &str) -> Result<(), DaprError> {
        let entry = self.entry(store)?;
        if entry.store.features().transactional {
            Ok(())
        } else {
            Err(errors::transactions_not_supported(store))
        }
    }

    pub async fn get(
        &self,
        store: &str,
        key: &str,
        consistency: Consistency,
        metadata: HashMap<String, String>,
    ) -> Result<Option<StateValue>, DaprError> {
        let entry = self.entry(store)?;
        let stored = entry.stored_key(key)?;
        read_one(entry.store.as_ref(), stored, consistency, metadata)
            .await
            .map_err(|e| errors::get_failed(store, key, e))
    }

    pub async fn bulk_get(
        &self,
        store: &str,
        keys: Vec<String>,
        parallelism: usize,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<BulkItem>, DaprError> {
        let entry = self.entry(store)?;
        let stored: Vec<String> = keys
            .iter()
            .map(|k| entry.stored_key(k))
            .collect::<Result<_, _>>()?;
        let limit = parallelism.clamp(1, MAX_PARALLELISM);
        let results = stream::iter(keys.into_iter().zip(stored))
            .map(|(key, stored)| {
                let (store, metadata) = (entry.store.clone(), metadata.clone());
                async move {
                    match read_one(store.as_ref(), stored, Consistency::Eventual, metadata).await {
                        Ok(value) => BulkItem {
                            key,
                            value,
                            error: None,
                        },
                        Err(e) => BulkItem {
                            key,
                            value: None,
                            error: Some(e.to_string()),
                        },
                    }
                }
            })
            .buffered(limit)
            .collect()
            .await;
        Ok(results)
    }

    /// Saves each item; not atomic across items (use a transaction for that), as in Dapr.
    pub async fn save(&self, store: &str, items: Vec<SaveItem>) -> Result<(), DaprError> {
        let entry = self.entry(store)?;
        let mut reqs = Vec::with_capacity(items.len());
        // Items the store would refuse (a bad option or TTL) fail on their own, and the
        // rest are still written, as Dapr's bulk save does; an ETag conflict anywhere then
        // decides the answer.
        let mut refused = Vec::new();
        for item in items {
            if item.key.is_empty() {
                return Err(errors::empty_key());
            }
            match set_request(&entry, item) {
                Ok(r) => reqs.push(r),
                Err(Invalid::Api(e)) => return Err(e),
                Err(Invalid::Store(e)) => refused.push(Err(e)),
            }
        }
        let outcome = match (reqs.as_slice(), refused.is_empty()) {
            ([one], true) => entry.store.set(one).await,
            _ => {
                let mut outcomes: Vec<_> = stream::iter(reqs)
                    .map(|r| {
                        let s = entry.store.clone();
                        async move { s.set(&r).await }
                    })
                    .buffer_unordered(MAX_PARALLELISM)
                    .collect()
                    .await;
                outcomes.extend(refused);
                worst(outcomes)
            }
        };
        outcome.map_err(|e| errors::save_failed(store, e))
    }

    pub async fn delete(&self, store: &str, item: DeleteItem) -> Result<(), DaprError> {
        let entry = self.entry(store)?;
        let key = item.key.clone();
        let req = delete_request(&entry, item)?;
        entry
            .store
            .delete(&req)
            .await
            .map_err(|e| errors::delete_failed(&key, e))
    }

    pub async fn delete_bulk(&self, store: &str, items: Vec<DeleteItem>) -> Result<(), DaprError> {
        let entry = self.entry(store)?;
        let reqs: Vec<DeleteRequest> = items
            .into_iter()
            .map(|i| delete_request(&entry, i))
            .collect::<Result<_, _>>()?;
        let outcomes = stream::iter(reqs)
            .map(|r| {
                let s = entry.store.clone();
                async move { s.delete(&r).await }
            })
            .buffer_unordered(MAX_PARALLELISM)
            .collect()
            .await;
        worst(outcomes).map_err(|e| errors::bulk_delete_failed(store, e))
    }

    /// Runs all operations atomically, or none. Stores without transactions are refused
    /// before anything is written.
    /// Hands over the outbox: from now on transactions on outbox-enabled stores publish.
    pub fn set_outbox(&self, outbox: Arc<crate::outbox::Outbox>) {
        let _ = self.outbox.set(outbox);
    }

    pub fn outbox(&self) -> Option<&Arc<crate::outbox::Outbox>> {
        self.outbox.get()
    }

    /// Runs a transaction; on a store with an outbox, its upserts are published once it
    /// commits (and not at all if it does not).
    pub async fn transact(&self, store: &str, ops: Vec<TxOp>) -> Result<(), DaprError> {
        if let Some(outbox) = self.outbox.get().filter(|o| o.enabled(store)) {
            let entry = self.entry(store)?;
            if !entry.store.features().transactional {
                return Err(errors::transactions_not_supported(store));
            }
            if ops.is_empty() {
                return Ok(());
            }
            let ops = outbox.prepare(store, ops, "").await?;
            return self.transact_plain(store, ops).await;
        }
        self.transact_plain(store, ops).await
    }

    /// A transaction without the outbox.
    pub async fn transact_plain(&self, store: &str, ops: Vec<TxOp>) -> Result<(), DaprError> {
        let entry = self.entry(store)?;
        if !entry.store.features().transactional {
            return Err(errors::transactions_not_supported(store));
        }
        if ops.is_empty() {
            return Ok(());
        }
        let mut prepared = Vec::with_capacity(ops.len());
        for op in ops {
            prepared.push(match op {
                TxOp::Upsert(item) => {
                    Operation::Set(set_request(&entry, item).map_err(|e| match e {
                        Invalid::Api(e) => e,
                        Invalid::Store(e) => errors::transaction_failed(e),
                    })?)
                }
                TxOp::Delete(item) => Operation::Delete(delete_request(&entry, item)?),
            });
        }
        entry
            .store
            .transact(&prepared)
            .await
            .map_err(errors::transaction_failed)
    }

    /// Runs a query over this app's keys. Unlike Dapr's Go runtime (which queries the whole
    /// table, every app's rows included), results are limited to the keys under this
    /// store's prefix, so one app never reads another's state through a query.
    pub async fn query(
        &self,
        store: &str,
        raw: &[u8],
    ) -> Result<(Vec<QueryItem>, String), DaprError> {
        let entry = self.entry_as(store, "")?;
        if !entry.store.features().query {
            return Err(errors::query_not_supported(store));
        }
        let query = Query::parse(raw).map_err(|e| errors::query_failed(store, e))?;
        let prefix = entry.prefix.as_deref().unwrap_or("");
        let resp = entry
            .store
            .query(prefix, &query)
            .await
            .map_err(|e| match e {
                StateError::NotSupported(_) => errors::query_not_supported(store),
                other => errors::query_failed(store, other),
            })?;
        let items = resp
            .results
            .into_iter()
            .map(|r| QueryItem {
                key: r
                    .key
                    .strip_prefix(prefix)
                    .map(str::to_string)
                    .unwrap_or(r.key),
                data: r.data,
                etag: r.etag,
            })
            .collect();
        Ok((items, resp.token))
    }
}

async fn read_one(
    store: &dyn StateStore,
    key: String,
    consistency: Consistency,
    metadata: HashMap<String, String>,
) -> Result<Option<StateValue>, StateError> {
    let req = GetRequest {
        key,
        consistency,
        metadata,
    };
    Ok(store.get(&req).await?.map(|item| {
        let mut metadata = HashMap::new();
        if let Some(at) = item.expires_at {
            metadata.insert("ttlExpireTime".to_string(), kit::time::rfc3339(at));
        }
        StateValue {
            data: item.data,
            etag: item.etag,
            metadata,
        }
    }))
}

/// Dapr checks for empty keys only where a save names them (HTTP save, gRPC `SaveState`);
/// a delete or a transaction with an empty key goes to the store as is.
fn set_request(entry: &StoreEntry, item: SaveItem) -> Result<SetRequest, Invalid> {
    let key = entry.stored_key(&item.key).map_err(Invalid::Api)?;
    let options = item.options.map_err(Invalid::Store)?;
    Ok(SetRequest {
        key,
        ttl: parse_ttl(&item.metadata).map_err(Invalid::Store)?,
        value: item.value,
        is_json: item.is_json,
        etag: etag_of(item.etag),
        concurrency: options.concurrency,
        consistency: options.consistency,
        metadata: item.metadata,
    })
}

fn delete_request(entry: &StoreEntry, item: DeleteItem) -> Result<DeleteRequest, DaprError> {
    Ok(DeleteRequest {
        key: entry.stored_key(&item.key)?,
        etag: etag_of(item.etag),
        concurrency: item.options.concurrency,
        consistency: item.options.consistency,
        metadata: item.metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_conflicts_win_over_other_failures() {
        let r = worst(vec![
            Ok(()),
            Err(StateError::Backend("down".into())),
            Err(StateError::EtagMismatch("k".into())),
        ]);
        assert!(matches!(r, Err(StateError::EtagMismatch(_))));
        assert!(matches!(
            worst(vec![Err(StateError::Backend("x".into())), Ok(())]),
            Err(StateError::Backend(_))
        ));
        assert!(worst(vec![Ok(()), Ok(())]).is_ok());
    }

    #[test]
    fn options_parse() {
        let o = Options::parse("first-write", "strong").expect("valid");
        assert_eq!(
            (o.concurrency, o.consistency),
            (Concurrency::FirstWrite, Consistency::Strong)
        );
        assert!(Options::parse("sometimes", "").is_err());
        assert!(Options::parse("", "psychic").is_err());
    }
}
