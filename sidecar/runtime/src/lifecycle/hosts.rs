//! Where each family's live components are put into service: the building block that
//! serves them. Adding a family means one [`Host`] here and one line in [`hosts`].

use std::sync::Arc;

use blocks::pubsub::PubSubBlock;
use blocks::secrets::SecretsBlock;
use blocks::state::{KeyPrefixError, StateBlock, StoreEntry};
use components_core::pubsub::PubSubs;
use components_core::secretstores::SecretStores;
use components_core::state::State;
use components_core::{Family, Live, Properties};
use thiserror::Error;

/// Why a building block would not take a component.
#[derive(Debug, Error)]
pub enum HostError {
    /// A state store's `keyPrefix` is unusable.
    #[error(transparent)]
    KeyPrefix(#[from] KeyPrefixError),
    /// The component was built for another family than the block serves.
    #[error("a {found} component is not a {wanted} one")]
    WrongFamily {
        found: &'static str,
        wanted: &'static str,
    },
}

/// A building block's table of components of one family.
pub trait Host: Send + Sync {
    /// The family it serves (`state`, ...).
    fn family(&self) -> &'static str;

    /// Refuses metadata the building block cannot use, before the component is built.
    fn check(&self, name: &str, props: &Properties) -> Result<(), HostError> {
        let _ = (name, props);
        Ok(())
    }

    /// Puts `live` into service under `name`, replacing any previous component.
    fn insert(&self, name: &str, live: &Live, props: &Properties) -> Result<(), HostError>;

    /// Takes `name` out of service; returns whether it was there.
    fn remove(&self, name: &str) -> bool;
}

fn api_of<F: Family>(live: &Live) -> Result<Arc<F::Api>, HostError> {
    live.api::<F>().ok_or(HostError::WrongFamily {
        found: live.family(),
        wanted: F::NAME,
    })
}

/// State stores, with the key prefix each one's `keyPrefix` asks for.
pub struct StateHost {
    pub block: Arc<StateBlock>,
}

impl Host for StateHost {
    fn family(&self) -> &'static str {
        State::NAME
    }

    fn check(&self, name: &str, props: &Properties) -> Result<(), HostError> {
        self.block.prefix(props, name)?;
        Ok(())
    }

    fn insert(&self, name: &str, live: &Live, props: &Properties) -> Result<(), HostError> {
        let prefix = self.block.prefix(props, name)?;
        let store = api_of::<State>(live)?;
        self.block
            .upsert(name, StoreEntry::new(name, store, prefix));
        Ok(())
    }

    fn remove(&self, name: &str) -> bool {
        self.block.remove(name)
    }
}

pub struct SecretsHost {
    pub block: Arc<SecretsBlock>,
}

impl Host for SecretsHost {
    fn family(&self) -> &'static str {
        SecretStores::NAME
    }

    fn insert(&self, name: &str, live: &Live, _: &Properties) -> Result<(), HostError> {
        self.block.upsert(name, api_of::<SecretStores>(live)?);
        Ok(())
    }

    fn remove(&self, name: &str) -> bool {
        self.block.remove(name)
    }
}

pub struct PubSubHost {
    pub block: Arc<PubSubBlock>,
}

impl Host for PubSubHost {
    fn family(&self) -> &'static str {
        PubSubs::NAME
    }

    fn insert(&self, name: &str, live: &Live, _: &Properties) -> Result<(), HostError> {
        self.block.upsert(name, api_of::<PubSubs>(live)?);
        Ok(())
    }

    fn remove(&self, name: &str) -> bool {
        self.block.remove(name)
    }
}

/// Every building block that hosts components.
pub fn hosts(
    state: Arc<StateBlock>,
    secrets: Arc<SecretsBlock>,
    pubsub: Arc<PubSubBlock>,
) -> Vec<Box<dyn Host>> {
    vec![
        Box::new(StateHost { block: state }),
        Box::new(SecretsHost { block: secrets }),
        Box::new(PubSubHost { block: pubsub }),
    ]
}
