//! Why the command line cannot start a sidecar, in Dapr's words.

use std::num::{ParseIntError, TryFromIntError};

use thiserror::Error;

/// A flag value the sidecar refuses before it starts, as Dapr refuses it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FlagError {
    /// `--app-id` is empty.
    #[error("parameter app-id cannot be empty")]
    EmptyAppId,
    /// `--app-id` has a dot, which would read as `app.namespace` to callers.
    #[error("parameter app-id cannot contain dots")]
    DottedAppId,
    /// A port flag is not a port number.
    #[error("invalid value {value:?} for --{flag}")]
    Port {
        flag: &'static str,
        value: String,
        #[source]
        source: ParseIntError,
    },
    /// The app's port is one the sidecar's own API listens on.
    #[error("the '{flag}' argument value {port} conflicts with 'app-port'")]
    PortConflict { flag: &'static str, port: u16 },
    /// A size flag is not a quantity (`4Mi`, `512`, ...).
    #[error("invalid value {value:?} for --{flag}")]
    Quantity { flag: &'static str, value: String },
    /// A size does not fit this machine's address space.
    #[error("--{flag} is too large")]
    TooLarge {
        flag: &'static str,
        #[source]
        source: TryFromIntError,
    },
}
