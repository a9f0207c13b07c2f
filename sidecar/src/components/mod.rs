//! Pluggable components: the traits building blocks program against, one module per
//! component type, and the registry that turns a `spec.type` into a live instance.

pub mod nameresolution;
pub mod properties;
mod registry;
pub mod sqlite;
pub mod state;

pub use properties::Properties;
pub use registry::{ComponentError, create_state_store};
