//! `state.sqlite`: the embedded persistent store. One table in Dapr's layout (`key`,
//! `value`, `is_binary`, `etag` as a UUID, `expiration_time`, `update_time`). SQLite is
//! synchronous, so each call runs on the blocking pool against one shared connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

use crate::open::{OpenError, valid_table_name};
use components_core::state::{
    Concurrency, DeleteRequest, Features, GetRequest, Item, Operation, SetRequest, StateError,
    StateStore,
};
use components_core::{Component, ComponentError, Properties};

/// Millisecond timestamps, so a one-second TTL is not rounded away.
const NOW: &str = "strftime('%Y-%m-%d %H:%M:%f', 'now')";

pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    sql: Arc<Statements>,
}

struct Statements {
    get: String,
    upsert: String,
    insert_first: String,
    update_etag: String,
    delete: String,
    delete_etag: String,
}

impl Statements {
    fn new(t: &str) -> Self {
        let live = format!("(expiration_time IS NULL OR expiration_time > {NOW})");
        let expiry = "CASE WHEN ?5 > 0 THEN strftime('%Y-%m-%d %H:%M:%f', 'now', '+' || ?5 || ' seconds') END";
        Self {
            get: format!(
                "SELECT value, is_binary, etag, \
                 CAST((julianday(expiration_time) - 2440587.5) * 86400000 AS INTEGER) \
                 FROM {t} WHERE key = ?1 AND {live}"
            ),
            upsert: format!(
                "INSERT INTO {t} (key, value, is_binary, etag, expiration_time, update_time) \
                 VALUES (?1, ?2, ?3, ?4, {expiry}, {NOW}) ON CONFLICT (key) DO UPDATE SET \
                 value = excluded.value, is_binary = excluded.is_binary, etag = excluded.etag, \
                 expiration_time = excluded.expiration_time, update_time = excluded.update_time"
            ),
            insert_first: format!(
                "INSERT INTO {t} (key, value, is_binary, etag, expiration_time, update_time) \
                 VALUES (?1, ?2, ?3, ?4, {expiry}, {NOW}) ON CONFLICT (key) DO UPDATE SET \
                 value = excluded.value, is_binary = excluded.is_binary, etag = excluded.etag, \
                 expiration_time = excluded.expiration_time, update_time = excluded.update_time \
                 WHERE NOT ({t}.expiration_time IS NULL OR {t}.expiration_time > {NOW})"
            ),
            update_etag: format!(
                "UPDATE {t} SET value = ?2, is_binary = ?3, etag = ?4, expiration_time = {expiry}, \
                 update_time = {NOW} WHERE key = ?1 AND etag = ?6 AND {live}"
            ),
            delete: format!("DELETE FROM {t} WHERE key = ?1"),
            delete_etag: format!("DELETE FROM {t} WHERE key = ?1 AND etag = ?2 AND {live}"),
        }
    }
}

fn db_err(e: impl std::fmt::Display) -> StateError {
    StateError::Backend(format!("sqlite: {e}"))
}

/// JSON documents are stored as text; other values base64-encoded with `is_binary`, as
/// Dapr's Go store writes `[]byte` values.
fn encode_value(value: &[u8], is_json: bool) -> (String, bool) {
    match std::str::from_utf8(value) {
        Ok(text) if is_json && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => {
            (text.to_string(), false)
        }
        _ => (B64.encode(value), true),
    }
}

fn do_set(c: &Connection, sql: &Statements, req: &SetRequest) -> Result<(), StateError> {
    let (value, is_binary) = encode_value(&req.value, req.is_json);
    let etag = uuid::Uuid::new_v4().to_string();
    let ttl = req.ttl.duration().map_or(0, |d| d.as_secs().max(1) as i64);
    let rows = match (&req.etag, req.concurrency) {
        (Some(old), _) => c
            .prepare_cached(&sql.update_etag)
            .and_then(|mut s| s.execute(params![req.key, value, is_binary, etag, ttl, old]))
            .map_err(db_err)?,
        (None, Concurrency::FirstWrite) => c
            .prepare_cached(&sql.insert_first)
            .and_then(|mut s| s.execute(params![req.key, value, is_binary, etag, ttl]))
            .map_err(db_err)?,
        (None, Concurrency::LastWrite) => c
            .prepare_cached(&sql.upsert)
            .and_then(|mut s| s.execute(params![req.key, value, is_binary, etag, ttl]))
            .map_err(db_err)?,
    };
    if rows == 0 {
        return Err(StateError::EtagMismatch(format!(
            "failed to set key {}",
            req.key
        )));
    }
    Ok(())
}

fn do_delete(c: &Connection, sql: &Statements, req: &DeleteRequest) -> Result<(), StateError> {
    match &req.etag {
        Some(etag) => {
            let rows = c
                .prepare_cached(&sql.delete_etag)
                .and_then(|mut s| s.execute(params![req.key, etag]))
                .map_err(db_err)?;
            if rows == 0 {
                return Err(StateError::EtagMismatch(format!(
                    "failed to delete key {}",
                    req.key
                )));
            }
        }
        None => {
            c.prepare_cached(&sql.delete)
                .and_then(|mut s| s.execute(params![req.key]))
                .map_err(db_err)?;
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Opens with Dapr's metadata: `connectionString` (a file path, a `file:` URI or
    /// `:memory:`; required), `tableName` (default `state`), `busyTimeout` (default 2s),
    /// `disableWAL`.
    pub async fn open(props: &Properties) -> Result<Self, ComponentError> {
        let path = props
            .get("connectionString")
            .ok_or_else(|| ComponentError::Metadata("connectionString is required".into()))?
            .to_string();
        let table = props.get_or("tableName", "state").to_string();
        if !valid_table_name(&table) {
            return Err(ComponentError::Metadata(format!(
                "invalid tableName {table:?}"
            )));
        }
        let busy = props.duration("busyTimeout")?;
        let wal = !props.flag("disableWAL");
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, OpenError> {
            let conn = crate::open::open(&path, busy.unwrap_or(Duration::from_secs(2)), wal)?;
            conn.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL, \
                 is_binary BOOLEAN NOT NULL, etag TEXT NOT NULL, expiration_time TIMESTAMP DEFAULT NULL, \
                 update_time TIMESTAMP NOT NULL)"
            ))
            .map_err(|reason| OpenError::CreateTable { table, reason })?;
            Ok(conn)
        })
        .await
        .map_err(|e| ComponentError::Connect(e.to_string()))?
        .map_err(|e| ComponentError::Connect(e.to_string()))?;
        let sql = Statements::new(props.get_or("tableName", "state"));
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            sql: Arc::new(sql),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with_conn<T, F>(&self, f: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Statements) -> Result<T, StateError> + Send + 'static,
    {
        let conn = self.conn.clone();
        let sql = self.sql.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| db_err("connection lock poisoned"))?;
            f(&mut guard, &sql)
        })
        .await
        .map_err(db_err)?
    }
}

/// The connection closes when the store is dropped.
impl Component for SqliteStore {}

#[async_trait]
impl StateStore for SqliteStore {
    fn features(&self) -> Features {
        Features {
            etag: true,
            transactional: true,
            ttl: true,
            query: false,
        }
    }

    async fn get(&self, req: &GetRequest) -> Result<Option<Item>, StateError> {
        let key = req.key.clone();
        self.with_conn(move |c, sql| {
            let row = c
                .prepare_cached(&sql.get)
                .and_then(|mut s| {
                    s.query_row(params![key], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, bool>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<i64>>(3)?,
                        ))
                    })
                    .optional()
                })
                .map_err(db_err)?;
            let Some((value, is_binary, etag, expires_ms)) = row else {
                return Ok(None);
            };
            let data = if is_binary {
                Bytes::from(B64.decode(value).map_err(db_err)?)
            } else {
                Bytes::from(value)
            };
            let expires_at = expires_ms
                .filter(|ms| *ms > 0)
                .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms as u64));
            Ok(Some(Item {
                data,
                etag: Some(etag),
                expires_at,
            }))
        })
        .await
    }

    async fn set(&self, req: &SetRequest) -> Result<(), StateError> {
        let req = req.clone();
        self.with_conn(move |c, sql| do_set(c, sql, &req)).await
    }

    async fn delete(&self, req: &DeleteRequest) -> Result<(), StateError> {
        let req = req.clone();
        self.with_conn(move |c, sql| do_delete(c, sql, &req)).await
    }

    async fn transact(&self, ops: &[Operation]) -> Result<(), StateError> {
        let ops = ops.to_vec();
        self.with_conn(move |c, sql| {
            // IMMEDIATE takes the write lock up front, so two transactions cannot both read
            // and then fail to upgrade (Dapr's store uses `_txlock=immediate` too).
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db_err)?;
            for op in &ops {
                // Returning early drops `tx`, which rolls back.
                match op {
                    Operation::Set(r) => do_set(&tx, sql, r)?,
                    Operation::Delete(r) => do_delete(&tx, sql, r)?,
                }
            }
            tx.commit().map_err(db_err)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_conformance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let props = Properties::new([("connectionString", path.display().to_string())]);
        let store = SqliteStore::open(&props).await.expect("open sqlite");
        components_core::testing::state::run(&store).await;
    }

    #[tokio::test]
    async fn data_survives_reopening_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let props = Properties::new([("connectionString", path.display().to_string())]);
        let store = SqliteStore::open(&props).await.expect("open");
        let req = SetRequest {
            key: "k".into(),
            value: Bytes::from_static(b"v"),
            ..Default::default()
        };
        store.set(&req).await.expect("set");
        drop(store);
        let store = SqliteStore::open(&props).await.expect("reopen");
        let got = store
            .get(&GetRequest {
                key: "k".into(),
                ..Default::default()
            })
            .await
            .expect("get");
        assert_eq!(got.map(|i| i.data), Some(Bytes::from_static(b"v")));
    }
}
