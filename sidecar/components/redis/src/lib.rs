//! Redis components (`state.redis`), with Dapr's data layout so that a Go sidecar and this
//! one can share a database.

mod state;

pub use state::RedisStore;
