//! SQLite components: `state.sqlite` and `nameresolution.sqlite`, sharing one way of
//! opening a database file.

mod nameresolution;
mod open;
mod state;

pub use nameresolution::SqliteResolver;
pub use state::SqliteStore;
