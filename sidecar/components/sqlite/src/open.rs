//! What every SQLite-backed component shares: opening the file the way Dapr's components
//! do, and the rule for table names that end up in SQL text.

use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// Opens (creating if needed) a database given as a path, a `file:` URI or `:memory:`,
/// with a busy timeout and, unless disabled, write-ahead logging. Blocking: call it on the
/// blocking pool.
pub fn open(path: &str, busy: Duration, wal: bool) -> Result<Connection, String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| format!("{path}: {e}"))?;
    conn.busy_timeout(busy).map_err(|e| e.to_string())?;
    if wal && path != ":memory:" {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| e.to_string())?;
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
