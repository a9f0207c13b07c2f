//! The component registry: which `spec.type`/`spec.version` builds which backend. Backends
//! register their factories explicitly (each backend crate has a `register` function that
//! the binary calls); nothing registers itself as a side effect of being linked.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::family::{Family, category_of, normalise_version, noun_of};
use crate::nameresolution::{Instance, Resolver};
use crate::{Component, ComponentError, Properties};

/// What a factory is given to build one component.
#[derive(Debug, Clone, Default)]
pub struct Init {
    /// `metadata.name`.
    pub name: String,
    /// `spec.metadata`, with `envRef`s and `secretKeyRef`s already resolved.
    pub properties: Properties,
    /// The app this sidecar serves.
    pub app_id: String,
    /// The sidecar's namespace.
    pub namespace: String,
}

/// A live component of any family: the family's API for the building block, plus what the
/// runtime needs to list and close it.
#[derive(Clone)]
pub struct Live {
    family: &'static str,
    capabilities: Vec<String>,
    lifecycle: Arc<dyn Component>,
    /// An `Arc<F::Api>`, recovered with [`Live::api`].
    api: Arc<dyn Any + Send + Sync>,
}

impl Live {
    /// Wraps a family's API object.
    pub fn new<F: Family>(api: Arc<F::Api>) -> Self {
        Self {
            family: F::NAME,
            capabilities: F::capabilities(&api),
            lifecycle: F::lifecycle(api.clone()),
            api: Arc::new(api),
        }
    }

    /// The family this component belongs to (`state`, `secretstores`, ...).
    pub fn family(&self) -> &'static str {
        self.family
    }

    /// The component as family `F`'s API, or `None` if it is of another family.
    pub fn api<F: Family>(&self) -> Option<Arc<F::Api>> {
        self.api.downcast_ref::<Arc<F::Api>>().cloned()
    }

    /// Capability names for the metadata API.
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    pub async fn close(&self) -> Result<(), ComponentError> {
        self.lifecycle.close().await
    }
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("family", &self.family)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Factory = Arc<dyn Fn(Init) -> BoxFuture<Result<Live, ComponentError>> + Send + Sync>;

/// What a name-resolution factory is given: its configuration and this sidecar, which it
/// may announce.
#[derive(Debug, Clone)]
pub struct ResolverInit {
    /// `spec.nameResolution.configuration` of the Configuration.
    pub properties: Properties,
    pub instance: Instance,
}

type ResolverFactory =
    Arc<dyn Fn(ResolverInit) -> BoxFuture<Result<Arc<dyn Resolver>, ComponentError>> + Send + Sync>;

/// Every backend this binary can build, by `spec.type` and version.
#[derive(Default, Clone)]
pub struct Registry {
    /// Keyed by `type/version`, the type lowercased as Dapr's registries do.
    components: HashMap<String, Factory>,
    /// Name resolution is configured by the Configuration, not by Components, so it has a
    /// table of its own, keyed by the short name (`mdns`, `sqlite`, `kubernetes`).
    resolvers: HashMap<String, ResolverFactory>,
}

fn key(type_: &str, version: &str) -> String {
    format!(
        "{}/{}",
        type_.to_ascii_lowercase(),
        normalise_version(version)
    )
}

impl Registry {
    /// Registers the factory of family `F`'s backend `type_` for each of `versions`.
    pub fn register<F, Fut>(
        &mut self,
        type_: &str,
        versions: &[&str],
        factory: impl Fn(Init) -> Fut + Send + Sync + 'static,
    ) where
        F: Family,
        Fut: Future<Output = Result<Arc<F::Api>, ComponentError>> + Send + 'static,
    {
        let factory = Arc::new(factory);
        let erased: Factory = Arc::new(move |init| {
            let made = factory(init);
            Box::pin(async move { made.await.map(Live::new::<F>) })
        });
        for version in versions {
            self.components.insert(key(type_, version), erased.clone());
        }
    }

    /// Registers a name-resolution backend under its short name (`mdns`, ...).
    pub fn register_resolver<Fut>(
        &mut self,
        name: &str,
        factory: impl Fn(ResolverInit) -> Fut + Send + Sync + 'static,
    ) where
        Fut: Future<Output = Result<Arc<dyn Resolver>, ComponentError>> + Send + 'static,
    {
        let factory = Arc::new(factory);
        self.resolvers.insert(
            name.to_string(),
            Arc::new(move |init| Box::pin(factory(init))),
        );
    }

    /// Builds the component `type_`/`version`. An unknown family is Dapr's "incorrect
    /// type"; a known family without this backend is "couldn't find ...".
    pub async fn create(
        &self,
        type_: &str,
        version: &str,
        init: Init,
    ) -> Result<Live, ComponentError> {
        let Some(category) = category_of(type_) else {
            return Err(ComponentError::IncorrectType(type_.to_string()));
        };
        let Some(factory) = self.components.get(&key(type_, version)) else {
            return Err(ComponentError::NotFound {
                noun: noun_of(category),
                kind: type_.to_string(),
                version: normalise_version(version).to_string(),
            });
        };
        factory(init).await
    }

    /// Builds the name resolver called `name` in the Configuration.
    pub async fn create_resolver(
        &self,
        name: &str,
        init: ResolverInit,
    ) -> Result<Arc<dyn Resolver>, ComponentError> {
        let Some(factory) = self.resolvers.get(name) else {
            return Err(ComponentError::NotFound {
                noun: "name resolver",
                kind: name.to_string(),
                version: "v1".to_string(),
            });
        };
        factory(init).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Component;

    /// A tiny family for testing the registry without any real backend.
    trait Greeter: Component {
        fn greet(&self) -> String;
    }
    struct Greeters;
    impl Family for Greeters {
        const NAME: &'static str = "state";
        type Api = dyn Greeter;
        fn capabilities(_: &Self::Api) -> Vec<String> {
            vec!["LOUD".into()]
        }
        fn lifecycle(api: Arc<Self::Api>) -> Arc<dyn Component> {
            api
        }
    }
    struct Hello(String);
    impl Component for Hello {}
    impl Greeter for Hello {
        fn greet(&self) -> String {
            format!("hello {}", self.0)
        }
    }

    fn registry() -> Registry {
        let mut r = Registry::default();
        r.register::<Greeters, _>("state.hello", &["v1"], |init: Init| async move {
            Ok(Arc::new(Hello(init.name)) as Arc<dyn Greeter>)
        });
        r
    }

    fn init(name: &str) -> Init {
        Init {
            name: name.into(),
            ..Init::default()
        }
    }

    #[tokio::test]
    async fn builds_a_registered_type_and_hands_back_its_api() {
        let live = registry()
            .create("state.Hello", "", init("a"))
            .await
            .expect("registered");
        assert_eq!(live.family(), "state");
        assert_eq!(live.capabilities(), ["LOUD"]);
        assert_eq!(live.api::<Greeters>().expect("api").greet(), "hello a");
        live.close().await.expect("close");
    }

    #[tokio::test]
    async fn unknown_families_and_backends_get_daprs_errors() {
        let r = registry();
        let e = r
            .create("nosuch.thing", "v1", init("x"))
            .await
            .expect_err("unknown family");
        assert_eq!(e.to_string(), "incorrect type nosuch.thing");
        let e = r
            .create("state.nope", "", init("x"))
            .await
            .expect_err("unknown backend");
        assert_eq!(e.to_string(), "couldn't find state store state.nope/v1");
        let e = r
            .create("state.hello", "v2", init("x"))
            .await
            .expect_err("unknown version");
        assert_eq!(e.to_string(), "couldn't find state store state.hello/v2");
    }
}
