//! HTTP components (bindings.http).

use components_core::Registry;

/// Registers this crate's backends.
pub fn register(registry: &mut Registry) {
    let _ = registry;
}
