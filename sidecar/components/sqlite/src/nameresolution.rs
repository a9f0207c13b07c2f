//! `nameresolution.sqlite`: sidecars on hosts that share a file (one machine, or a shared
//! volume) register themselves in a SQLite table and look each other up there; it works
//! where multicast does not. Table layout and metadata keys are Dapr's (`connectionString`,
//! `tableName` default `hosts`, `updateInterval` default 5 s, `timeout` default 1 s).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, params};
use tokio::task::JoinHandle;

use crate::open::{OpenError, valid_table_name};
use components_core::nameresolution::{Instance, ResolveError, Resolver};
use components_core::{ComponentError, Properties};

/// How long a lookup is reused before the table is asked again: short enough to notice a
/// restarted sidecar within a heartbeat, long enough that calls do not each hit SQLite.
const CACHE_FOR: Duration = Duration::from_secs(1);

type Lookups = std::collections::HashMap<String, (Vec<String>, std::time::Instant)>;

pub struct SqliteResolver {
    conn: Arc<Mutex<Connection>>,
    /// Recent lookups: the addresses of each `(app id, namespace)` and when they were read.
    cache: Mutex<Lookups>,
    /// Spreads calls over an app's instances.
    next: std::sync::atomic::AtomicUsize,
    table: String,
    registration_id: String,
    address: String,
    /// Rows older than this are dead sidecars.
    stale_after: i64,
    heartbeat: Option<JoinHandle<()>>,
}

fn err(e: impl std::fmt::Display) -> ResolveError {
    ResolveError::Backend(e.to_string())
}

impl SqliteResolver {
    /// Opens the shared database, registers `me`, and keeps the registration fresh.
    pub async fn start(props: &Properties, me: Instance) -> Result<Self, ComponentError> {
        let path = props
            .get("connectionString")
            .ok_or_else(|| ComponentError::Metadata("connectionString is required".into()))?
            .to_string();
        let table = props.get_or("tableName", "hosts").to_string();
        if !valid_table_name(&table) {
            return Err(ComponentError::Metadata(format!(
                "invalid tableName {table:?}"
            )));
        }
        let busy = props.duration("busyTimeout")?;
        let busy = busy.unwrap_or(Duration::from_millis(800));
        let interval = props.duration("updateInterval")?;
        let interval = interval
            .unwrap_or(Duration::from_secs(5))
            .max(Duration::from_secs(1));
        let metadata = props.get_or("metadataTableName", "metadata").to_string();
        if !valid_table_name(&metadata) {
            return Err(ComponentError::Metadata(format!(
                "invalid metadataTableName {metadata:?}"
            )));
        }
        // Dapr's sidecars share this file: the migration level they keep in the metadata
        // table says the hosts table exists, so one of theirs starting after one of ours
        // does not try to create it again.
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {table} (registration_id TEXT NOT NULL PRIMARY KEY, \
             address TEXT NOT NULL, app_id TEXT NOT NULL, namespace TEXT NOT NULL, \
             last_update INTEGER NOT NULL); \
             CREATE UNIQUE INDEX IF NOT EXISTS {table}_address_idx ON {table} (address); \
             CREATE INDEX IF NOT EXISTS {table}_last_update_idx ON {table} (last_update); \
             CREATE TABLE IF NOT EXISTS {metadata} (key text NOT NULL PRIMARY KEY, value text NOT NULL); \
             INSERT OR IGNORE INTO {metadata} (key, value) VALUES ('nr-migrations', '1');"
        );
        let registration_id = uuid::Uuid::new_v4().to_string();
        let register = format!(
            "INSERT INTO {table} (registration_id, address, app_id, namespace, last_update) \
             VALUES (?1, ?2, ?3, ?4, unixepoch(CURRENT_TIMESTAMP)) \
             ON CONFLICT (address) DO UPDATE SET registration_id = excluded.registration_id, \
             app_id = excluded.app_id, namespace = excluded.namespace, last_update = excluded.last_update"
        );
        let reg = (registration_id.clone(), me.clone());
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, OpenError> {
            let conn = crate::open::open(&path, busy, true)?;
            conn.execute_batch(&create)?;
            conn.execute(
                &register,
                params![reg.0, reg.1.address, reg.1.app_id, reg.1.namespace],
            )?;
            Ok(conn)
        })
        .await
        .map_err(|e| ComponentError::Connect(e.to_string()))?
        .map_err(|e| ComponentError::Connect(e.to_string()))?;
        let conn = Arc::new(Mutex::new(conn));
        let heartbeat = {
            let conn = Arc::downgrade(&conn);
            let sql = format!(
                "UPDATE {table} SET last_update = unixepoch(CURRENT_TIMESTAMP) \
                 WHERE registration_id = ?1 AND address = ?2"
            );
            let (id, address) = (registration_id.clone(), me.address.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                loop {
                    tick.tick().await;
                    let Some(conn) = conn.upgrade() else { break };
                    let (sql, id, address) = (sql.clone(), id.clone(), address.clone());
                    let _ = tokio::task::spawn_blocking(move || {
                        if let Ok(c) = conn.lock()
                            && let Err(e) = c.execute(&sql, params![id, address])
                        {
                            tracing::warn!("nameresolution.sqlite: heartbeat failed: {e}");
                        }
                    })
                    .await;
                }
            })
        };
        Ok(Self {
            conn,
            cache: Mutex::default(),
            next: std::sync::atomic::AtomicUsize::new(0),
            table,
            registration_id,
            address: me.address,
            stale_after: i64::try_from(interval.as_secs()).unwrap_or(5) * 2 + 1,
            heartbeat: Some(heartbeat),
        })
    }
}

impl Drop for SqliteResolver {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

#[async_trait]
impl Resolver for SqliteResolver {
    async fn resolve(&self, app_id: &str, _namespace: &str) -> Result<String, ResolveError> {
        let key = app_id.to_string();
        let cached = {
            let cache = self.cache.lock().map_err(|_| err("cache lock poisoned"))?;
            cache
                .get(&key)
                .filter(|(_, at)| at.elapsed() < CACHE_FOR)
                .map(|(a, _)| a.clone())
        };
        let addresses = match cached {
            Some(a) => a,
            None => {
                let conn = self.conn.clone();
                // Dapr's resolver looks hosts up by app id alone: the namespace column is
                // written but never matched (Dapr's standalone sidecars register an empty
                // one), so a namespace-qualified id finds the same hosts.
                let sql = format!(
                    "SELECT address FROM {} WHERE app_id = ?1 \
                     AND unixepoch(CURRENT_TIMESTAMP) - last_update < ?2",
                    self.table
                );
                let (app, stale) = (key.clone(), self.stale_after);
                let found = tokio::task::spawn_blocking(move || {
                    let c = conn.lock().map_err(|_| err("connection lock poisoned"))?;
                    let mut stmt = c.prepare_cached(&sql).map_err(err)?;
                    let rows = stmt
                        .query_map(params![app, stale], |r| r.get::<_, String>(0))
                        .map_err(err)?;
                    rows.collect::<Result<Vec<String>, _>>().map_err(err)
                })
                .await
                .map_err(err)??;
                let mut cache = self.cache.lock().map_err(|_| err("cache lock poisoned"))?;
                if cache.len() >= 4096 {
                    // Callers name the apps looked up; stale entries go rather than pile up.
                    cache.retain(|_, (_, at)| at.elapsed() < CACHE_FOR);
                }
                cache.insert(key, (found.clone(), std::time::Instant::now()));
                found
            }
        };
        if addresses.is_empty() {
            return Err(ResolveError::NotFound(app_id.to_string()));
        }
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % addresses.len();
        Ok(addresses[i].clone())
    }

    async fn unregister(&self) {
        let conn = self.conn.clone();
        let sql = format!(
            "DELETE FROM {} WHERE registration_id = ?1 AND address = ?2",
            self.table
        );
        let (id, address) = (self.registration_id.clone(), self.address.clone());
        let _ = tokio::task::spawn_blocking(move || {
            if let Ok(c) = conn.lock() {
                let _ = c.execute(&sql, params![id, address]);
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sidecars_find_each_other_through_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let props = Properties::new([(
            "connectionString",
            dir.path().join("nr.db").display().to_string(),
        )]);
        let me = |app: &str, port: u16| Instance {
            app_id: app.into(),
            namespace: String::new(),
            address: format!("127.0.0.1:{port}"),
            pinned: false,
        };
        let a = SqliteResolver::start(&props, me("a", 1001))
            .await
            .expect("a registers");
        let b = SqliteResolver::start(&props, me("b", 1002))
            .await
            .expect("b registers");
        assert_eq!(
            a.resolve("b", "").await.expect("a finds b"),
            "127.0.0.1:1002"
        );
        assert_eq!(
            b.resolve("a", "").await.expect("b finds a"),
            "127.0.0.1:1001"
        );
        assert!(matches!(
            a.resolve("c", "").await,
            Err(ResolveError::NotFound(_))
        ));
        // As Dapr's resolver, the file does not tell namespaces apart.
        assert_eq!(
            a.resolve("b", "other-ns").await.expect("any namespace"),
            "127.0.0.1:1002"
        );
        b.unregister().await;
        tokio::time::sleep(CACHE_FOR + Duration::from_millis(100)).await;
        assert!(
            matches!(a.resolve("b", "").await, Err(ResolveError::NotFound(_))),
            "gone once the cache expires"
        );
    }
}
