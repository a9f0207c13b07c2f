//! The state table: naming rules, connection strings, and the schema migrations Dapr's Go
//! store applies, run under a PostgreSQL advisory lock so that sidecars starting together
//! do not race each other.

use std::str::FromStr;

use deadpool_postgres::Object;

use components_core::ComponentError;

/// Table names come from metadata and end up in SQL text, so only plain identifiers
/// (optionally schema-qualified) are accepted.
pub fn valid_table_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 120
        && name.split('.').count() <= 2
        && name.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !part.starts_with(|c: char| c.is_ascii_digit())
        })
}

/// Accepts the connection strings Dapr users write for pgx: libpq key/value pairs (with
/// `database=` as an alias of `dbname=`) or a `postgres://` URL.
pub fn parse_connection_string(raw: &str) -> Result<tokio_postgres::Config, ComponentError> {
    let normalised = if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        raw.to_string()
    } else {
        raw.split_whitespace()
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) if k.eq_ignore_ascii_case("database") => format!("dbname={v}"),
                _ => pair.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    tokio_postgres::Config::from_str(&normalised)
        .map_err(|e| ComponentError::Metadata(format!("invalid connectionString: {e}")))
}

/// JSON documents go into `value` as jsonb; other values are base64 in a JSON string with
/// `isbinary` set, exactly as Dapr's Go store writes `[]byte` values.
/// The number of Dapr's state-table migrations this layout corresponds to.
const MIGRATIONS: i32 = 3;

fn connect_err(table: &str) -> impl Fn(tokio_postgres::Error) -> ComponentError + '_ {
    move |e| match e.as_db_error() {
        // tokio-postgres displays a server error as just "db error"; the server's message
        // is what tells the user what is wrong.
        Some(db) => ComponentError::Connect(format!("migrating table {table}: {}", db.message())),
        None => ComponentError::Connect(format!("migrating table {table}: {e}")),
    }
}

/// Brings `table` to Dapr's third migration (`expiredate`, then `row_id`), recording the
/// count in `meta` as Dapr does, so tables created by either runtime work with both.
pub async fn migrate(client: &mut Object, table: &str, meta: &str) -> Result<(), ComponentError> {
    let err = connect_err(table);
    let tx = client.transaction().await.map_err(&err)?;
    // The metadata table is shared by every state table that names it, so creating it races
    // between sidecars migrating different tables: lock it first, then this table.
    for lock_name in [
        format!("dapr-state-migrations:{meta}"),
        format!("dapr-state-migrations:{table}"),
    ] {
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&lock_name])
            .await
            .map_err(&err)?;
    }
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {meta} (key text NOT NULL PRIMARY KEY, value text NOT NULL)"
    ))
    .await
    .map_err(&err)?;
    let done: i32 = tx
        .query_opt(
            &format!("SELECT value FROM {meta} WHERE key = 'migrations'"),
            &[],
        )
        .await
        .map_err(&err)?
        .and_then(|row| row.try_get::<_, String>(0).ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    // Every step is idempotent and runs each time: the counter in `meta` is one key per
    // metadata table, shared by every state table that uses it, so it cannot be trusted
    // to describe this table. It is kept up to date for Go sidecars.
    {
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (key text NOT NULL PRIMARY KEY, value jsonb NOT NULL, \
             isbinary boolean NOT NULL, insertdate timestamp with time zone NOT NULL DEFAULT now(), \
             updatedate timestamp with time zone NULL)"
        ))
        .await
        .map_err(&err)?;
    }
    {
        tx.batch_execute(&format!(
            "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS expiredate timestamp with time zone NULL"
        ))
        .await
        .map_err(&err)?;
    }
    {
        let index = format!("{}_row_id_uidx", table.replace('.', "_"));
        let has_row_id = tx
            .query_opt(
                "SELECT 1 FROM information_schema.columns WHERE table_name = $1 AND column_name = 'row_id'",
                &[&table.rsplit('.').next().unwrap_or(table)],
            )
            .await
            .map_err(&err)?
            .is_some();
        if !has_row_id {
            tx.batch_execute(&format!(
                "ALTER TABLE {table} ADD COLUMN row_id bigint; \
                 UPDATE {table} SET row_id = n.rn FROM \
                   (SELECT key, row_number() OVER (ORDER BY insertdate, key) AS rn FROM {table}) n \
                   WHERE {table}.key = n.key; \
                 ALTER TABLE {table} ALTER COLUMN row_id SET NOT NULL; \
                 ALTER TABLE {table} ALTER COLUMN row_id ADD GENERATED BY DEFAULT AS IDENTITY; \
                 SELECT setval(pg_get_serial_sequence('{table}', 'row_id'), \
                   COALESCE((SELECT max(row_id) FROM {table}), 0) + 1, false);"
            ))
            .await
            .map_err(&err)?;
        }
        tx.batch_execute(&format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS \"{index}\" ON {table} (row_id)"
        ))
        .await
        .map_err(&err)?;
    }
    if done < MIGRATIONS {
        tx.execute(
            &format!(
                "INSERT INTO {meta} (key, value) VALUES ('migrations', $1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ),
            &[&MIGRATIONS.to_string()],
        )
        .await
        .map_err(&err)?;
    }
    tx.commit().await.map_err(&err)
}
