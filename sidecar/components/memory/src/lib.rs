//! In-memory components: the embedded default of a sidecar started with no resources, so
//! that a newcomer can use state within seconds. Never the only implementation of a family.

mod state;

pub use state::MemoryStore;
