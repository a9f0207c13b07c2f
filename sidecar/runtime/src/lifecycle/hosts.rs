//! Where each family's live components are put into service: the building block that
//! serves them. Adding a family means one [`Host`] here and one line in [`hosts`].

use std::sync::Arc;

use std::sync::OnceLock;

use blocks::bindings::inputs::Inputs;
use blocks::bindings::{BindingEntry, BindingsBlock};
use blocks::pubsub::PubSubBlock;
use blocks::pubsub::scopes::TopicScopes;
use blocks::pubsub::subscriptions::Subscriber;
use blocks::secrets::SecretsBlock;
use blocks::state::{KeyPrefixError, StateBlock, StoreEntry};
use components_core::bindings::Bindings;
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

    /// Fills in what the runtime adds to a component's metadata before it is built.
    fn complete(&self, props: Properties) -> Properties {
        props
    }

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
        if let Some(outbox) = self.block.outbox() {
            outbox.configure(name, |k| props.get(k).map(str::to_string));
        }
        self.block
            .upsert(name, StoreEntry::new(name, store, prefix));
        Ok(())
    }

    fn remove(&self, name: &str) -> bool {
        if let Some(outbox) = self.block.outbox() {
            outbox.remove(name);
        }
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

/// Set once the app channel exists; until then no subscription is open to move.
pub type SubscriberSlot = Arc<OnceLock<Arc<Subscriber>>>;

/// Brokers, with the topic scopes each one's metadata sets for this app; the
/// subscriptions on a broker are reopened when it is replaced or removed.
pub struct PubSubHost {
    pub block: Arc<PubSubBlock>,
    pub namespace: String,
    pub subscriber: SubscriberSlot,
}

impl PubSubHost {
    fn reload(&self, name: &str) {
        if let Some(s) = self.subscriber.get() {
            let (s, name) = (s.clone(), name.to_string());
            tokio::spawn(async move { s.reload(&name).await });
        }
    }
}

impl Host for PubSubHost {
    fn family(&self) -> &'static str {
        PubSubs::NAME
    }

    /// `consumerID` defaults to the app id, so that replicas of one app share a topic's
    /// messages and different apps each get all of them; `{appID}`, `{namespace}` and
    /// `{uuid}` in it are replaced, as Dapr does.
    fn complete(&self, mut props: Properties) -> Properties {
        let app_id = self.block.app_id();
        let id = props.get("consumerID").unwrap_or(app_id).to_string();
        let id = id
            .replace("{appID}", app_id)
            .replace("{namespace}", &self.namespace)
            .replace("{uuid}", &uuid::Uuid::new_v4().to_string());
        props.set("consumerID", id);
        props
    }

    fn insert(&self, name: &str, live: &Live, props: &Properties) -> Result<(), HostError> {
        let scopes = TopicScopes::from_properties(props, self.block.app_id());
        self.block.upsert(name, api_of::<PubSubs>(live)?, scopes);
        self.reload(name);
        Ok(())
    }

    fn remove(&self, name: &str) -> bool {
        let removed = self.block.remove(name);
        self.reload(name);
        removed
    }
}

/// Set once the app channel exists.
pub type InputsSlot = Arc<OnceLock<Arc<Inputs>>>;

/// Bindings, with the route and direction their metadata gives; an input binding that
/// changes is restarted.
pub struct BindingsHost {
    pub block: Arc<BindingsBlock>,
    pub inputs: InputsSlot,
}

impl BindingsHost {
    fn reload(&self, name: &str) {
        if let Some(i) = self.inputs.get() {
            let (i, name) = (i.clone(), name.to_string());
            tokio::spawn(async move { i.reload(&name).await });
        }
    }
}

impl Host for BindingsHost {
    fn family(&self) -> &'static str {
        Bindings::NAME
    }

    fn insert(&self, name: &str, live: &Live, props: &Properties) -> Result<(), HostError> {
        let direction = props
            .get("direction")
            .map(|d| {
                d.split(',')
                    .map(|x| x.trim().to_ascii_lowercase())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        self.block.upsert(
            name,
            BindingEntry {
                api: api_of::<Bindings>(live)?,
                route: props.get("route").unwrap_or(name).to_string(),
                direction,
            },
        );
        self.reload(name);
        Ok(())
    }

    fn remove(&self, name: &str) -> bool {
        let removed = self.block.remove(name);
        self.reload(name);
        removed
    }
}

/// Every building block that hosts components.
pub fn hosts(
    state: Arc<StateBlock>,
    secrets: Arc<SecretsBlock>,
    pubsub: PubSubHost,
    bindings: BindingsHost,
) -> Vec<Box<dyn Host>> {
    vec![
        Box::new(StateHost { block: state }),
        Box::new(SecretsHost { block: secrets }),
        Box::new(pubsub),
        Box::new(bindings),
    ]
}
