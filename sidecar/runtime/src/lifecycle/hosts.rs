//! Where each family's live components are put into service: the building block that
//! serves them. Adding a family means one [`Host`] here and one line in [`hosts`].

use std::sync::Arc;

use blocks::secrets::SecretsBlock;
use blocks::state::{StateBlock, StoreEntry};
use components_core::secretstores::SecretStores;
use components_core::state::State;
use components_core::{Family, Live, Properties};

/// A building block's table of components of one family.
pub trait Host: Send + Sync {
    /// The family it serves (`state`, ...).
    fn family(&self) -> &'static str;

    /// Refuses metadata the building block cannot use, before the component is built.
    fn check(&self, name: &str, props: &Properties) -> Result<(), String> {
        let _ = (name, props);
        Ok(())
    }

    /// Puts `live` into service under `name`, replacing any previous component.
    fn insert(&self, name: &str, live: &Live, props: &Properties) -> Result<(), String>;

    /// Takes `name` out of service; returns whether it was there.
    fn remove(&self, name: &str) -> bool;
}

fn api_of<F: Family>(live: &Live) -> Result<Arc<F::Api>, String> {
    live.api::<F>()
        .ok_or_else(|| format!("a {} component is not a {} one", live.family(), F::NAME))
}

/// State stores, with the key prefix each one's `keyPrefix` asks for.
pub struct StateHost {
    pub block: Arc<StateBlock>,
    pub app_id: String,
}

impl Host for StateHost {
    fn family(&self) -> &'static str {
        State::NAME
    }

    fn check(&self, name: &str, props: &Properties) -> Result<(), String> {
        StateBlock::prefix(props, name, &self.app_id).map(|_| ())
    }

    fn insert(&self, name: &str, live: &Live, props: &Properties) -> Result<(), String> {
        let prefix = StateBlock::prefix(props, name, &self.app_id)?;
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

    fn insert(&self, name: &str, live: &Live, _: &Properties) -> Result<(), String> {
        self.block.upsert(name, api_of::<SecretStores>(live)?);
        Ok(())
    }

    fn remove(&self, name: &str) -> bool {
        self.block.remove(name)
    }
}

/// Every building block that hosts components.
pub fn hosts(
    app_id: &str,
    state: Arc<StateBlock>,
    secrets: Arc<SecretsBlock>,
) -> Vec<Box<dyn Host>> {
    vec![
        Box::new(StateHost {
            block: state,
            app_id: app_id.to_string(),
        }),
        Box::new(SecretsHost { block: secrets }),
    ]
}
