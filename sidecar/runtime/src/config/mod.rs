//! The sidecar's command line: Dapr's `daprd` flags with Dapr's names and defaults.

mod flags;
mod ports;
mod quantity;

pub use flags::{Flags, parse_args};

/// This sidecar's namespace: `NAMESPACE`, or `default` as in Dapr's standalone mode.
pub fn namespace() -> String {
    std::env::var("NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into())
}
pub use ports::stable_port;
pub use quantity::parse_quantity;

/// The Dapr release whose APIs and flags this sidecar implements. Reported by
/// `daprd --version` and the metadata API, because the Dapr CLI picks the flags it passes
/// by comparing this version.
pub const DAPR_COMPAT_VERSION: &str = "1.16.0";
