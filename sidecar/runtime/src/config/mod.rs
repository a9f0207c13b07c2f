//! The sidecar's configuration as it starts: Dapr's `daprd` flags with Dapr's names and
//! defaults, and the environment variables Dapr reads ([`Env`]), each read once.

mod env;
mod error;
mod flags;
mod mode;
mod ports;
mod quantity;

pub use env::{Env, env_var};
pub use error::FlagError;
pub use flags::{Flags, parse_args};
pub use mode::{AppProtocol, InvalidChoice, Mode};
pub use ports::stable_port;
pub use quantity::parse_quantity;

/// The Dapr release whose APIs and flags this sidecar implements. Reported by
/// `daprd --version` and the metadata API, because the Dapr CLI picks the flags it passes
/// by comparing this version.
pub const DAPR_COMPAT_VERSION: &str = "1.16.0";
