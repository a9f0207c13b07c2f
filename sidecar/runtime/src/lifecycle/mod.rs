//! The component lifecycle, the same for every family: at startup secret stores first (so
//! that other components' `secretKeyRef`s resolve through them), then the rest in document
//! order; each with its scopes, metadata, `initTimeout` and `ignoreErrors`; while running,
//! components added, changed or removed (by the operator, or by the resources watcher with
//! `HotReload`); and every component closed at shutdown or when it is removed or replaced.
//!
//! A component that references a secret store not loaded yet is parked, as Dapr does, and
//! built as soon as that store loads.

mod hosts;
mod init;
pub mod watch;

use std::collections::HashMap;
use std::sync::Arc;

use blocks::metadata::{ComponentInfo, MetadataBlock};
use blocks::pubsub::PubSubBlock;
use blocks::secrets::SecretsBlock;
use blocks::state::StateBlock;
use components_core::secretstores::SecretStores;
use components_core::{Family, Init as FactoryInput, Live, Registry};
use thiserror::Error;
use tokio::sync::Mutex;

use crate::resources::{Component, DaprResource};
use hosts::Host;
use init::{InitError, Resolved, log_name};

/// A Component document and where it came from, for messages that must name the file.
#[derive(Debug, Clone)]
pub struct Sourced {
    pub component: Component,
    /// `path (document N)` for files, `the operator` in Kubernetes mode.
    pub source: String,
}

impl Sourced {
    fn describe(&self) -> String {
        format!("{} from {}", log_name(&self.component), self.source)
    }
}

/// Why startup cannot go on.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("duplicate definition of Component name {new} with existing {existing}")]
    Duplicate { new: String, existing: String },
    #[error(
        "Error processing component, daprd will exit gracefully: initialization error occurred for {component}"
    )]
    Init {
        component: String,
        #[source]
        source: InitError,
    },
}

/// One component in service.
struct Running {
    component: Component,
    live: Live,
}

#[derive(Default)]
struct Loaded {
    running: HashMap<String, Running>,
    /// Components waiting for a secret store, by the store's name.
    parked: HashMap<String, Vec<Sourced>>,
}

/// What adding one component came to.
enum Added {
    Running,
    /// Not for this app.
    Skipped,
    Parked,
    /// Failed, and the failure was logged rather than returned.
    Failed,
}

/// The live components of this sidecar, of every family.
pub struct Lifecycle {
    registry: Arc<Registry>,
    app_id: String,
    namespace: String,
    kubernetes: bool,
    hosts: Vec<Box<dyn Host>>,
    secrets: Arc<SecretsBlock>,
    /// The brokers, for the publish API.
    pubsub: Arc<PubSubBlock>,
    /// The subscriptions on them, once the app channel exists.
    subscriber: hosts::SubscriberSlot,
    /// The bindings, for the bindings API.
    bindings: Arc<blocks::bindings::BindingsBlock>,
    /// The input bindings delivering to the app, once the app channel exists.
    inputs: hosts::InputsSlot,
    metadata: Arc<MetadataBlock>,
    /// Changes are rare and must not interleave: one at a time.
    loaded: Mutex<Loaded>,
}

/// Refuses two components of one name, naming where both came from.
pub fn check_unique(docs: &[Sourced]) -> Result<(), LoadError> {
    let mut seen: HashMap<&str, &Sourced> = HashMap::new();
    for doc in docs {
        if let Some(existing) = seen.insert(doc.component.name(), doc) {
            return Err(LoadError::Duplicate {
                new: doc.describe(),
                existing: existing.describe(),
            });
        }
    }
    Ok(())
}

fn is_secret_store(c: &Component) -> bool {
    c.spec.spec.type_.starts_with("secretstores.")
}

/// Compares what Dapr compares to decide whether a component changed: name, spec, auth
/// and scopes, not the rest of its object metadata.
fn same(a: &Component, b: &Component) -> bool {
    a.name() == b.name() && a.spec == b.spec
}

impl Lifecycle {
    pub fn new(
        registry: Arc<Registry>,
        app_id: &str,
        namespace: &str,
        kubernetes: bool,
        state: Arc<StateBlock>,
        metadata: Arc<MetadataBlock>,
    ) -> Self {
        let secrets = Arc::new(SecretsBlock::default());
        let pubsub = Arc::new(PubSubBlock::new(app_id));
        let subscriber = hosts::SubscriberSlot::default();
        let bindings = Arc::new(blocks::bindings::BindingsBlock::default());
        let inputs = hosts::InputsSlot::default();
        Self {
            registry,
            app_id: app_id.to_string(),
            namespace: namespace.to_string(),
            kubernetes,
            hosts: hosts::hosts(
                state,
                secrets.clone(),
                hosts::PubSubHost {
                    block: pubsub.clone(),
                    namespace: namespace.to_string(),
                    subscriber: subscriber.clone(),
                },
                hosts::BindingsHost {
                    block: bindings.clone(),
                    inputs: inputs.clone(),
                },
            ),
            bindings,
            inputs,
            subscriber,
            secrets,
            pubsub,
            metadata,
            loaded: Mutex::default(),
        }
    }

    /// The pub/sub building block this lifecycle fills.
    pub fn pubsub(&self) -> Arc<PubSubBlock> {
        self.pubsub.clone()
    }

    /// The bindings building block this lifecycle fills.
    pub fn bindings(&self) -> Arc<blocks::bindings::BindingsBlock> {
        self.bindings.clone()
    }

    /// Hands over the input bindings' manager: from now on a binding that changes is
    /// restarted.
    pub fn set_inputs(&self, inputs: Arc<blocks::bindings::inputs::Inputs>) {
        let _ = self.inputs.set(inputs);
    }

    /// Hands over the subscriptions' manager: from now on a broker that changes has its
    /// subscriptions reopened.
    pub fn set_subscriber(&self, subscriber: Arc<blocks::pubsub::subscriptions::Subscriber>) {
        let _ = self.subscriber.set(subscriber);
    }

    /// The declarative subscriptions changed: those in scope for this app replace the
    /// previous ones.
    pub async fn set_subscriptions(&self, declared: &[crate::subscriptions::Declared]) {
        if let Some(s) = self.subscriber.get() {
            s.set_declarative(crate::subscriptions::for_app(declared, &self.app_id))
                .await;
        }
    }

    fn host(&self, family: &str) -> Option<&dyn Host> {
        self.hosts
            .iter()
            .find(|h| h.family() == family)
            .map(|h| h.as_ref())
    }

    /// Startup: every document, secret stores first. Any failure is fatal unless the
    /// component says `ignoreErrors: true`; a duplicate name is always fatal.
    pub async fn load(&self, docs: Vec<Sourced>) -> Result<(), LoadError> {
        check_unique(&docs)?;
        let (first, rest): (Vec<Sourced>, Vec<Sourced>) = docs
            .into_iter()
            .partition(|d| is_secret_store(&d.component));
        let mut loaded = self.loaded.lock().await;
        for doc in first.into_iter().chain(rest) {
            self.add(&mut loaded, doc, true).await?;
        }
        Ok(())
    }

    /// Builds one component and puts it into service, then any component that was waiting
    /// for it. With `fatal`, a failure without `ignoreErrors` is returned; otherwise it is
    /// logged and the sidecar keeps serving.
    async fn add(
        &self,
        loaded: &mut Loaded,
        doc: Sourced,
        fatal: bool,
    ) -> Result<Added, LoadError> {
        let name = doc.component.name().to_string();
        let added = match self.build(&doc).await {
            Ok(Some((live, props))) => {
                let family = live.family();
                let host = self.host(family);
                let inserted = match host {
                    Some(h) => h.insert(&name, &live, &props).map_err(InitError::from),
                    None => Err(InitError::Unhosted { family }),
                };
                match inserted {
                    Ok(()) => {
                        self.metadata.upsert_component(ComponentInfo {
                            name: name.clone(),
                            kind: doc.component.spec.spec.type_.clone(),
                            version: components_core::family::normalise_version(
                                &doc.component.spec.spec.version,
                            )
                            .to_string(),
                            capabilities: live.capabilities().to_vec(),
                        });
                        tracing::info!("Component loaded: {}", log_name(&doc.component));
                        if let Some(old) = loaded.running.insert(
                            name.clone(),
                            Running {
                                component: doc.component.clone(),
                                live,
                            },
                        ) {
                            if old.live.family() != family
                                && let Some(h) = self.host(old.live.family())
                            {
                                h.remove(&name);
                            }
                            close(&name, &old.live).await;
                        }
                        if family == SecretStores::NAME {
                            for dependent in loaded.parked.remove(&name).unwrap_or_default() {
                                Box::pin(self.add(loaded, dependent, fatal)).await?;
                            }
                        }
                        Ok(Added::Running)
                    }
                    Err(e) => {
                        close(&name, &live).await;
                        Err(e)
                    }
                }
            }
            Ok(None) => Ok(Added::Skipped),
            Err(Parked(store)) => {
                tracing::warn!(
                    "Component {name} references a secret store that isn't loaded: {store:?}; it will be initialised when that store loads"
                );
                let waiting = loaded.parked.entry(store).or_default();
                waiting.retain(|d| d.component.name() != name);
                waiting.push(doc.clone());
                return Ok(Added::Parked);
            }
            Err(Failed(e)) => Err(e),
        };
        match added {
            Ok(a) => Ok(a),
            Err(source) if doc.component.spec.spec.ignore_errors => {
                tracing::warn!(
                    "Ignoring error processing component: {}: {source}",
                    doc.describe()
                );
                Ok(Added::Failed)
            }
            Err(source) if !fatal => {
                tracing::error!(
                    "component update failed: {}: {source}; the sidecar keeps serving without it",
                    doc.describe()
                );
                Ok(Added::Failed)
            }
            Err(source) => Err(LoadError::Init {
                component: doc.describe(),
                source,
            }),
        }
    }

    /// Resolves and creates the backend; `None` when the component is not for this app.
    async fn build(
        &self,
        doc: &Sourced,
    ) -> Result<Option<(Live, components_core::Properties)>, Unbuilt> {
        let c = &doc.component;
        if !c.is_app_scoped(&self.app_id) {
            tracing::debug!(component = %c.name(), "not in scope for this app; skipped");
            return Ok(None);
        }
        let props = match init::resolve_metadata(c, self.kubernetes, &self.secrets).await {
            Resolved::Ready(p) => p,
            Resolved::Parked(store) => return Err(Parked(store)),
        };
        let family = components_core::family::category_of(&c.spec.spec.type_);
        let host = family.and_then(|f| self.host(f));
        let props = match host {
            Some(h) => h.complete(props),
            None => props,
        };
        if let Some(host) = host {
            host.check(c.name(), &props)
                .map_err(|e| Failed(InitError::from(e)))?;
        }
        let input = FactoryInput {
            name: c.name().to_string(),
            properties: props.clone(),
            app_id: self.app_id.clone(),
            namespace: self.namespace.clone(),
        };
        let live = init::create(&self.registry, c, input)
            .await
            .map_err(Failed)?;
        Ok(Some((live, props)))
    }

    /// While running: adds `doc`, or replaces the component of that name if it changed.
    /// The new version is built before the old one is closed, and a version that fails to
    /// build leaves the old one serving (Dapr closes first and exits on failure; a typo in
    /// a file being edited should not take a serving sidecar down).
    pub async fn apply(&self, doc: Sourced) {
        let mut loaded = self.loaded.lock().await;
        let name = doc.component.name().to_string();
        if let Some(current) = loaded.running.get(&name)
            && same(&current.component, &doc.component)
        {
            tracing::debug!("Component update skipped: no changes detected: {name}");
            return;
        }
        let was_running = loaded.running.contains_key(&name);
        match self.add(&mut loaded, doc, false).await {
            Ok(Added::Skipped | Added::Parked) if was_running => {
                // Out of scope now, or waiting for a store: the old version goes.
                self.take_down(&mut loaded, &name).await;
            }
            _ => {}
        }
    }

    /// While running: removes the component called `name`, if there is one.
    pub async fn remove(&self, name: &str) {
        let mut loaded = self.loaded.lock().await;
        for waiting in loaded.parked.values_mut() {
            waiting.retain(|d| d.component.name() != name);
        }
        self.take_down(&mut loaded, name).await;
    }

    async fn take_down(&self, loaded: &mut Loaded, name: &str) {
        if let Some(old) = loaded.running.remove(name) {
            if let Some(host) = self.host(old.live.family()) {
                host.remove(name);
            }
            self.metadata.remove_component(name);
            close(name, &old.live).await;
            tracing::info!("Component removed: {name}");
        }
    }

    /// While running: makes the set of components match `docs` (the resources folders as
    /// they are now): deletions first, then changes and additions.
    pub async fn reconcile(&self, docs: Vec<Sourced>) {
        let gone: Vec<String> = {
            let loaded = self.loaded.lock().await;
            let parked = loaded
                .parked
                .values()
                .flatten()
                .map(|d| d.component.name().to_string());
            loaded
                .running
                .keys()
                .cloned()
                .chain(parked)
                .filter(|n| !docs.iter().any(|d| d.component.name() == n.as_str()))
                .collect()
        };
        for name in gone {
            self.remove(&name).await;
        }
        let (first, rest): (Vec<Sourced>, Vec<Sourced>) = docs
            .into_iter()
            .partition(|d| is_secret_store(&d.component));
        for doc in first.into_iter().chain(rest) {
            self.apply(doc).await;
        }
    }

    /// Names of the components in service.
    pub async fn names(&self) -> Vec<String> {
        self.loaded.lock().await.running.keys().cloned().collect()
    }

    /// Shutdown: closes every component at once, as Dapr does.
    pub async fn close_all(&self) {
        let mut loaded = self.loaded.lock().await;
        let running: Vec<(String, Running)> = loaded.running.drain().collect();
        futures::future::join_all(running.iter().map(|(name, r)| close(name, &r.live))).await;
    }
}

async fn close(name: &str, live: &Live) {
    tracing::debug!("Shutting down component {name}");
    if let Err(e) = live.close().await {
        tracing::warn!("error closing component {name}: {e}");
    }
}

/// Why a component was not built.
enum Unbuilt {
    Parked(String),
    Failed(InitError),
}
use Unbuilt::{Failed, Parked};

#[cfg(test)]
mod tests;
