//! What every SQLite-backed component shares: opening the file the way Dapr's components
//! do, and the rule for table names that end up in SQL text.

use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use thiserror::Error;

/// Why a component's database could not be made ready. Where the message already ends
/// with SQLite's reason, the reason is a field rather than the `source`, so that a chain
/// of errors does not print it twice.
#[derive(Debug, Error)]
pub enum OpenError {
    /// The database could not be opened or created.
    #[error("{path}: {reason}")]
    Open {
        path: String,
        reason: rusqlite::Error,
    },
    /// The component's table could not be created.
    #[error("creating table {table}: {reason}")]
    CreateTable {
        table: String,
        reason: rusqlite::Error,
    },
    /// SQLite refused a setting or a statement run while setting up.
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

/// Opens (creating if needed) a database given as a path, a `file:` URI or `:memory:`,
/// with a busy timeout and, unless disabled, write-ahead logging. Blocking: call it on the
/// blocking pool.
pub fn open(path: &str, busy: Duration, wal: bool) -> Result<Connection, OpenError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|reason| OpenError::Open {
        path: path.to_string(),
        reason,
    })?;
    conn.busy_timeout(busy)?;
    if wal && path != ":memory:" {
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    Ok(conn)
}

/// Table names come from metadata and are put into SQL text, so only plain identifiers
/// are accepted.
pub fn valid_table_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 120
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}
