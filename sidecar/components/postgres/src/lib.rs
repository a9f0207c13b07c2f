//! PostgreSQL components (`state.postgresql` v1), with Dapr's table layout and migrations.

mod state;

pub use state::PostgresStore;
