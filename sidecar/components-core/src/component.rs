//! What every live component shares, whatever its family: a way to let go of its backend.

use async_trait::async_trait;

use crate::ComponentError;

/// The lifecycle side of a component. Every family's trait (`StateStore`, `SecretStore`,
/// ...) extends it, so the runtime can close any component without knowing its family.
#[async_trait]
pub trait Component: Send + Sync + 'static {
    /// Releases connections, background tasks and files. Called once, at shutdown or when
    /// the component is removed or replaced; no other call follows it.
    async fn close(&self) -> Result<(), ComponentError> {
        Ok(())
    }
}
