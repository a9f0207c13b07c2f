//! `state.postgresql` (v1): one table with Dapr's column layout (`key`, `value` jsonb,
//! `isbinary`, `insertdate`, `updatedate`, `expiredate`) and the row's `xmin` as the ETag,
//! so tables written by Dapr's Go store are read and written unchanged. Non-JSON values
//! are stored base64-encoded as a JSON string with `isbinary` set, as Dapr does.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

mod query;
mod schema;

use query::SqlParams;
use schema::{parse_connection_string, valid_table_name};

use components_core::state::query::{Query, QueryResponse, QueryResult};
use components_core::state::{
    Concurrency, DeleteRequest, Features, GetRequest, Item, Operation, SetRequest, StateError,
    StateStore, Ttl,
};
use components_core::{Component, ComponentError, Properties};

pub struct PostgresStore {
    pool: Pool,
    sql: Statements,
    cleanup: Option<JoinHandle<()>>,
}

/// SQL text per operation, built once with the configured table name.
struct Statements {
    table: String,
    get: String,
    upsert: String,
    insert_first: String,
    update_etag: String,
    delete: String,
    delete_etag: String,
}

impl Statements {
    fn new(table: &str) -> Self {
        let live = "(expiredate IS NULL OR expiredate > now())";
        let expiry = "CASE WHEN $4::integer > 0 THEN now() + $4::integer * interval '1 second' END";
        Self {
            table: table.to_string(),
            get: format!(
                "SELECT value::text, isbinary, xmin::text, expiredate FROM {table} WHERE key = $1 AND {live}"
            ),
            upsert: format!(
                "INSERT INTO {table} (key, value, isbinary, expiredate) VALUES ($1, $2::text::jsonb, $3, {expiry}) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, isbinary = excluded.isbinary, \
                 updatedate = now(), expiredate = excluded.expiredate"
            ),
            insert_first: format!(
                "INSERT INTO {table} (key, value, isbinary, expiredate) VALUES ($1, $2::text::jsonb, $3, {expiry}) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, isbinary = excluded.isbinary, \
                 insertdate = now(), updatedate = NULL, expiredate = excluded.expiredate \
                 WHERE {table}.expiredate IS NOT NULL AND {table}.expiredate <= now()"
            ),
            update_etag: format!(
                "UPDATE {table} SET value = $2::text::jsonb, isbinary = $3, updatedate = now(), expiredate = {expiry} \
                 WHERE key = $1 AND xmin::text = $5 AND {live}"
            ),
            delete: format!("DELETE FROM {table} WHERE key = $1"),
            delete_etag: format!(
                "DELETE FROM {table} WHERE key = $1 AND xmin::text = $2 AND {live}"
            ),
        }
    }
}

fn encode_value(value: &[u8], is_json: bool) -> (String, bool) {
    match std::str::from_utf8(value) {
        Ok(text) if is_json && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => {
            (text.to_string(), false)
        }
        _ => (format!("\"{}\"", B64.encode(value)), true),
    }
}

fn decode_value(text: String, is_binary: bool) -> Result<Bytes, StateError> {
    if !is_binary {
        return Ok(Bytes::from(text));
    }
    let encoded: String = serde_json::from_str(&text).map_err(StateError::backend)?;
    B64.decode(encoded)
        .map(Bytes::from)
        .map_err(StateError::backend)
}

fn ttl_secs(ttl: Ttl) -> i32 {
    ttl.duration()
        .map_or(0, |d| d.as_secs().clamp(1, i32::MAX as u64) as i32)
}

fn db_err(e: impl DbErrorText) -> StateError {
    StateError::Backend(format!("postgresql: {}", e.text()))
}

/// tokio-postgres prints server errors as just "db error"; the server's message is what
/// an operator needs.
trait DbErrorText {
    fn text(&self) -> String;
}

impl DbErrorText for tokio_postgres::Error {
    fn text(&self) -> String {
        match self.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => self.to_string(),
        }
    }
}

impl DbErrorText for deadpool_postgres::PoolError {
    fn text(&self) -> String {
        match self {
            deadpool_postgres::PoolError::Backend(e) => e.text(),
            other => other.to_string(),
        }
    }
}

impl PostgresStore {
    /// Connects with Dapr's metadata: `connectionString` (required), `tableName` (default
    /// `state`), `metadataTableName` (default `dapr_metadata`), `maxConns`, `timeout` /
    /// `timeoutInSeconds` (default 20 s: connecting, waiting for a pooled connection, and
    /// each statement), `cleanupInterval` / `cleanupIntervalInSeconds` (default 1 h; 0 or
    /// negative disables the expired-row sweeper).
    pub async fn connect(props: &Properties) -> Result<Self, ComponentError> {
        let conn_str = props
            .get("connectionString")
            .or_else(|| props.get("url"))
            .ok_or_else(|| ComponentError::Metadata("connectionString is required".into()))?;
        let mut cfg = parse_connection_string(conn_str)?;
        let timeout = match props.get("timeout") {
            Some(_) => props.duration("timeout"),
            None => props.duration("timeoutInSeconds"),
        }?
        .unwrap_or(Duration::from_secs(20));
        if timeout < Duration::from_secs(1) {
            return Err(ComponentError::Metadata(
                "timeout must be at least 1s".into(),
            ));
        }
        cfg.connect_timeout(timeout);
        cfg.options(format!("-c statement_timeout={}", timeout.as_millis()));
        let table = props.get_or("tableName", "state");
        let meta_table = props.get_or("metadataTableName", "dapr_metadata");
        for (what, name) in [("tableName", table), ("metadataTableName", meta_table)] {
            if !valid_table_name(name) {
                return Err(ComponentError::Metadata(format!("invalid {what} {name:?}")));
            }
        }
        let max_conns = props.parse::<usize>("maxConns")?;
        let manager = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_conns.unwrap_or(8).max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .build()
            .map_err(|e| ComponentError::Connect(e.to_string()))?;
        let mut client = pool
            .get()
            .await
            .map_err(|e| ComponentError::Connect(e.to_string()))?;
        schema::migrate(&mut client, table, meta_table).await?;
        drop(client);
        let interval = match props.get("cleanupInterval") {
            Some(_) => props.duration("cleanupInterval"),
            None => props.duration("cleanupIntervalInSeconds"),
        }?
        .unwrap_or(Duration::from_secs(3600));
        let cleanup = (!interval.is_zero()).then(|| {
            let pool = pool.clone();
            let sql =
                format!("DELETE FROM {table} WHERE expiredate IS NOT NULL AND expiredate <= now()");
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                loop {
                    tick.tick().await;
                    if let Ok(client) = pool.get().await
                        && let Err(e) = client.execute(sql.as_str(), &[]).await
                    {
                        tracing::warn!(error = %e, "postgresql: expired-row cleanup failed");
                    }
                }
            })
        });
        Ok(Self {
            pool,
            sql: Statements::new(table),
            cleanup,
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StateError> {
        self.pool.get().await.map_err(db_err)
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(task) = self.cleanup.take() {
            task.abort();
        }
    }
}

/// xmin is a 32-bit transaction id: anything else can never be an ETag of this store.
fn check_etag(etag: Option<&str>) -> Result<Option<&str>, StateError> {
    match etag {
        Some(e) if e.parse::<u32>().is_err() => Err(StateError::EtagInvalid(e.to_string())),
        other => Ok(other),
    }
}

async fn do_set<C: GenericClient>(
    c: &C,
    sql: &Statements,
    req: &SetRequest,
) -> Result<(), StateError> {
    let etag = check_etag(req.etag.as_deref())?;
    let (value, is_binary) = encode_value(&req.value, req.is_json);
    let ttl = ttl_secs(req.ttl);
    let params: [&(dyn ToSql + Sync); 4] = [&req.key, &value, &is_binary, &ttl];
    let rows = match etag {
        Some(e) => {
            let stmt = c.prepare_cached(&sql.update_etag).await.map_err(db_err)?;
            c.execute(&stmt, &[params[0], params[1], params[2], params[3], &e])
                .await
                .map_err(db_err)?
        }
        None if req.concurrency == Concurrency::FirstWrite => {
            let stmt = c.prepare_cached(&sql.insert_first).await.map_err(db_err)?;
            c.execute(&stmt, &params).await.map_err(db_err)?
        }
        None => {
            let stmt = c.prepare_cached(&sql.upsert).await.map_err(db_err)?;
            c.execute(&stmt, &params).await.map_err(db_err)?
        }
    };
    if rows == 0 {
        return Err(StateError::EtagMismatch(format!(
            "failed to set key {}",
            req.key
        )));
    }
    Ok(())
}

async fn do_delete<C: GenericClient>(
    c: &C,
    sql: &Statements,
    req: &DeleteRequest,
) -> Result<(), StateError> {
    match check_etag(req.etag.as_deref())? {
        Some(e) => {
            let stmt = c.prepare_cached(&sql.delete_etag).await.map_err(db_err)?;
            let rows = c.execute(&stmt, &[&req.key, &e]).await.map_err(db_err)?;
            if rows == 0 {
                return Err(StateError::EtagMismatch(format!(
                    "failed to delete key {}",
                    req.key
                )));
            }
        }
        None => {
            let stmt = c.prepare_cached(&sql.delete).await.map_err(db_err)?;
            c.execute(&stmt, &[&req.key]).await.map_err(db_err)?;
        }
    }
    Ok(())
}

#[async_trait]
impl Component for PostgresStore {
    /// Stops the TTL sweeper and closes the pool's connections.
    async fn close(&self) -> Result<(), ComponentError> {
        if let Some(task) = &self.cleanup {
            task.abort();
        }
        self.pool.close();
        Ok(())
    }
}

#[async_trait]
impl StateStore for PostgresStore {
    fn features(&self) -> Features {
        Features {
            etag: true,
            transactional: true,
            ttl: true,
            query: true,
        }
    }

    async fn get(&self, req: &GetRequest) -> Result<Option<Item>, StateError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(&self.sql.get).await.map_err(db_err)?;
        let Some(row) = client.query_opt(&stmt, &[&req.key]).await.map_err(db_err)? else {
            return Ok(None);
        };
        let data = decode_value(
            row.try_get(0).map_err(db_err)?,
            row.try_get(1).map_err(db_err)?,
        )?;
        Ok(Some(Item {
            data,
            etag: row.try_get(2).map_err(db_err)?,
            expires_at: row.try_get::<_, Option<SystemTime>>(3).map_err(db_err)?,
        }))
    }

    async fn set(&self, req: &SetRequest) -> Result<(), StateError> {
        do_set(&self.client().await?, &self.sql, req).await
    }

    async fn delete(&self, req: &DeleteRequest) -> Result<(), StateError> {
        do_delete(&self.client().await?, &self.sql, req).await
    }

    async fn transact(&self, ops: &[Operation]) -> Result<(), StateError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        for op in ops {
            // Dropping `tx` on the error path rolls everything back.
            match op {
                Operation::Set(r) => do_set(&tx, &self.sql, r).await?,
                Operation::Delete(r) => do_delete(&tx, &self.sql, r).await?,
            }
        }
        tx.commit().await.map_err(db_err)
    }

    async fn query(&self, key_prefix: &str, query: &Query) -> Result<QueryResponse, StateError> {
        let mut sql_params = SqlParams::default();
        let prefix = sql_params.push_text(key_prefix.to_string());
        let mut sql = format!(
            "SELECT key, value::text, isbinary, xmin::text FROM {} WHERE starts_with(key, {prefix}) \
             AND (expiredate IS NULL OR expiredate > now())",
            self.sql.table
        );
        if let Some(filter) = &query.filter {
            sql.push_str(" AND ");
            sql.push_str(&sql_params.filter(filter));
        }
        sql.push_str(" ORDER BY ");
        for s in &query.sort {
            let path = sql_params.push_path(&s.path);
            let dir = if s.descending { "DESC" } else { "ASC" };
            sql.push_str(&format!("value #> {path} {dir} NULLS LAST, "));
        }
        sql.push_str("key ASC");
        if query.limit > 0 {
            // One extra row tells whether another page exists.
            sql.push_str(&format!(" LIMIT {}", query.limit + 1));
        }
        if query.offset > 0 {
            sql.push_str(&format!(" OFFSET {}", query.offset));
        }
        let client = self.client().await?;
        let params: Vec<&(dyn ToSql + Sync)> = sql_params.refs();
        let rows = client.query(sql.as_str(), &params).await.map_err(db_err)?;
        let more = query.limit > 0 && rows.len() > query.limit;
        let mut results = Vec::with_capacity(rows.len());
        for row in rows.into_iter().take(if query.limit > 0 {
            query.limit
        } else {
            usize::MAX
        }) {
            results.push(QueryResult {
                key: row.try_get(0).map_err(db_err)?,
                data: decode_value(
                    row.try_get(1).map_err(db_err)?,
                    row.try_get(2).map_err(db_err)?,
                )?,
                etag: row.try_get(3).map_err(db_err)?,
            });
        }
        let token = if more {
            (query.offset + query.limit).to_string()
        } else {
            String::new()
        };
        Ok(QueryResponse { results, token })
    }

    async fn ping(&self) -> Result<(), StateError> {
        self.client()
            .await?
            .batch_execute("SELECT 1")
            .await
            .map_err(db_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs the PostgreSQL server the test script starts; never skipped.
    fn test_props(table: &str) -> Properties {
        let url = std::env::var("PG_URL")
            .expect("PG_URL must point at a PostgreSQL server (run scripts/test.sh)");
        Properties::new([("connectionString", url), ("tableName", table.to_string())])
    }

    #[tokio::test]
    async fn passes_conformance() {
        let table = format!("conf_{}", uuid::Uuid::new_v4().simple());
        let store = PostgresStore::connect(&test_props(&table))
            .await
            .expect("connect to postgres");
        components_core::testing::state::run(&store).await;
    }

    async fn raw_client() -> tokio_postgres::Client {
        let url = std::env::var("PG_URL").expect("PG_URL");
        let (client, conn) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
        tokio::spawn(conn);
        client
    }

    /// A table as Dapr's Go store leaves it after its first migration, with data in it,
    /// must be upgraded in place and stay readable.
    #[tokio::test]
    async fn upgrades_tables_created_by_older_dapr() {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let (table, meta) = (format!("old_{suffix}"), format!("meta_{suffix}"));
        let raw = raw_client().await;
        raw.batch_execute(&format!(
            "CREATE TABLE {meta} (key text NOT NULL PRIMARY KEY, value text NOT NULL); \
             INSERT INTO {meta} VALUES ('migrations', '1'); \
             CREATE TABLE {table} (key text NOT NULL PRIMARY KEY, value jsonb NOT NULL, \
               isbinary boolean NOT NULL, insertdate timestamptz NOT NULL DEFAULT now(), \
               updatedate timestamptz NULL); \
             INSERT INTO {table} (key, value, isbinary) VALUES ('app||a', '{{\"n\": 1}}', false), \
               ('app||b', '\"aGk=\"', true);"
        ))
        .await
        .expect("seed old layout");
        let props = Properties::new([
            ("connectionString", std::env::var("PG_URL").expect("PG_URL")),
            ("tableName", table.clone()),
            ("metadataTableName", meta.clone()),
        ]);
        let store = PostgresStore::connect(&props)
            .await
            .expect("connect upgrades the table");
        let get = |k: &str| GetRequest {
            key: k.into(),
            ..Default::default()
        };
        let a = store
            .get(&get("app||a"))
            .await
            .expect("get a")
            .expect("a present");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&a.data).expect("json")["n"],
            1
        );
        let b = store
            .get(&get("app||b"))
            .await
            .expect("get b")
            .expect("b present");
        assert_eq!(b.data.as_ref(), b"hi");
        let req = SetRequest {
            key: "app||c".into(),
            value: Bytes::from_static(b"1"),
            ttl: Ttl::After(Duration::from_secs(60)),
            ..Default::default()
        };
        store.set(&req).await.expect("ttl write needs expiredate");
        let row = raw
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE row_id IS NOT NULL"),
                &[],
            )
            .await
            .expect("row_id column");
        assert_eq!(row.get::<_, i64>(0), 3);
        let row = raw
            .query_one(
                &format!("SELECT value FROM {meta} WHERE key = 'migrations'"),
                &[],
            )
            .await
            .expect("meta");
        assert_eq!(row.get::<_, String>(0), "3");
    }

    /// Sidecars starting together on a fresh database must not fail each other's setup.
    #[tokio::test]
    async fn concurrent_setup_on_a_fresh_table() {
        let table = format!("race_{}", uuid::Uuid::new_v4().simple());
        let props = test_props(&table);
        let results =
            futures::future::join_all((0..6).map(|_| PostgresStore::connect(&props))).await;
        for r in results {
            r.expect("every sidecar connects");
        }
    }

    #[test]
    fn table_names_are_identifiers() {
        for ok in ["state", "my_state", "public.state", "s1"] {
            assert!(valid_table_name(ok), "{ok}");
        }
        for bad in ["", "1abc", "a;drop", "a b", "a.b.c", "a.", "\"x\""] {
            assert!(!valid_table_name(bad), "{bad}");
        }
    }

    #[test]
    fn accepts_pgx_style_connection_strings() {
        let cfg =
            parse_connection_string("host=127.0.0.1 port=5433 user=u database=db").expect("parses");
        assert_eq!(cfg.get_dbname(), Some("db"));
        assert_eq!(cfg.get_ports(), [5433]);
        assert!(parse_connection_string("postgres://u@127.0.0.1:5433/db").is_ok());
    }

    #[test]
    fn binary_values_round_trip_through_encoding() {
        for v in [&b"{\"a\":1}"[..], b"plain", b"\xff\x00", b"\"s\""] {
            for is_json in [true, false] {
                let (text, bin) = encode_value(v, is_json);
                assert_eq!(decode_value(text, bin).expect("decodes").as_ref(), v);
            }
        }
        assert!(
            !encode_value(b"{}", true).1,
            "JSON documents are stored as jsonb"
        );
        assert!(
            encode_value(b"{}", false).1,
            "opaque bytes are stored as binary"
        );
        assert!(encode_value(b"not json", true).1);
    }
}
