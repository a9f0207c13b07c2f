//! The state store contract: what a building block may ask of a store, and what a store
//! promises back. Keys arrive here already prefixed by the building block; a store never
//! knows which app or API called it.

mod error;
pub mod query;
mod ttl;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Component, Family};

pub use error::StateError;
pub use query::{Query, QueryResponse, QueryResult};
pub use ttl::{Ttl, parse_ttl};

/// Optional abilities a store advertises; reported truthfully in the metadata API so SDKs
/// and users know which calls will succeed before they make them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    pub etag: bool,
    pub transactional: bool,
    pub ttl: bool,
    pub query: bool,
}

impl Features {
    /// Capability names as Dapr's metadata API spells them. Dapr lists ACTOR for every
    /// store that could hold actor state (ETags and transactions), whether or not it is the
    /// configured actor store.
    pub fn names(&self) -> Vec<&'static str> {
        let mut out = Vec::with_capacity(5);
        for (on, name) in [
            (self.etag, "ETAG"),
            (self.transactional, "TRANSACTIONAL"),
            (self.ttl, "TTL"),
            (self.query, "QUERY_API"),
            (self.transactional && self.etag, "ACTOR"),
        ] {
            if on {
                out.push(name);
            }
        }
        out
    }
}

/// Write concurrency as Dapr defines it: last-write wins unless the caller asks for
/// first-write, in which case a write without a matching ETag must not overwrite.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Concurrency {
    FirstWrite,
    #[default]
    LastWrite,
}

/// Read/write consistency hint. Single-node backends are always strong; the hint is
/// carried so stores that replicate can honour it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Consistency {
    #[default]
    Eventual,
    Strong,
}

/// One value as a store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub data: Bytes,
    pub etag: Option<String>,
    /// When the value expires, for stores with TTL support.
    pub expires_at: Option<SystemTime>,
}

#[derive(Debug, Clone, Default)]
pub struct GetRequest {
    pub key: String,
    pub consistency: Consistency,
    pub metadata: HashMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct SetRequest {
    pub key: String,
    pub value: Bytes,
    /// The value is a JSON document (HTTP saves, or `contentType: application/json`).
    /// JSON-native stores keep such values queryable; any other value is opaque bytes and
    /// must round-trip exactly.
    pub is_json: bool,
    pub etag: Option<String>,
    pub concurrency: Concurrency,
    pub consistency: Consistency,
    /// What the caller asked about expiry (`ttlInSeconds`).
    pub ttl: Ttl,
    pub metadata: HashMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteRequest {
    pub key: String,
    pub etag: Option<String>,
    pub concurrency: Concurrency,
    pub consistency: Consistency,
    pub metadata: HashMap<String, String>,
}

/// One step of an atomic transaction.
#[derive(Debug, Clone)]
pub enum Operation {
    Set(SetRequest),
    Delete(DeleteRequest),
}

impl Operation {
    pub fn key(&self) -> &str {
        match self {
            Operation::Set(r) => &r.key,
            Operation::Delete(r) => &r.key,
        }
    }
}

/// A state store backend. Implementations must make `transact` all-or-nothing: a
/// transaction that fails on one operation leaves every key as it was.
#[async_trait]
pub trait StateStore: Component {
    fn features(&self) -> Features;

    async fn get(&self, req: &GetRequest) -> Result<Option<Item>, StateError>;

    async fn set(&self, req: &SetRequest) -> Result<(), StateError>;

    async fn delete(&self, req: &DeleteRequest) -> Result<(), StateError>;

    async fn transact(&self, ops: &[Operation]) -> Result<(), StateError> {
        let _ = ops;
        Err(StateError::NotSupported("transactions"))
    }

    /// Runs a query over the values whose keys start with `key_prefix`; keys in the
    /// results keep their stored (prefixed) form.
    async fn query(&self, key_prefix: &str, query: &Query) -> Result<QueryResponse, StateError> {
        let _ = (key_prefix, query);
        Err(StateError::NotSupported("query"))
    }

    /// Checks that the backend is reachable, for `/v1.0/healthz/outbound`.
    async fn ping(&self) -> Result<(), StateError> {
        Ok(())
    }
}

/// The `state` family.
pub struct State;

impl Family for State {
    const NAME: &'static str = "state";
    type Api = dyn StateStore;

    fn capabilities(api: &Self::Api) -> Vec<String> {
        api.features()
            .names()
            .into_iter()
            .map(String::from)
            .collect()
    }

    fn lifecycle(api: Arc<Self::Api>) -> Arc<dyn Component> {
        api
    }
}
