//! The lifecycle with fake backends that record what happens to them: init order, secret
//! resolution, parking, replacement, removal and close.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use blocks::metadata::MetadataBlock;
use blocks::state::StateBlock;
use components_core::secretstores::{Secret, SecretError, SecretStore, SecretStores};
use components_core::state::{
    DeleteRequest, Features, GetRequest, Item, SetRequest, State, StateError, StateStore,
};
use components_core::{Component, ComponentError, Registry};

use super::{Lifecycle, Sourced};
use crate::resources::{Component as Doc, decode};

/// What the fakes saw, in order: `init <name> <props>` and `close <name>`.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    fn push(&self, line: String) {
        self.0.lock().expect("journal").push(line);
    }
    fn lines(&self) -> Vec<String> {
        self.0.lock().expect("journal").clone()
    }
}

struct FakeStore {
    name: String,
    journal: Journal,
}

#[async_trait]
impl Component for FakeStore {
    async fn close(&self) -> Result<(), ComponentError> {
        self.journal.push(format!("close {}", self.name));
        Ok(())
    }
}

#[async_trait]
impl StateStore for FakeStore {
    fn features(&self) -> Features {
        Features {
            etag: true,
            ..Features::default()
        }
    }
    async fn get(&self, _: &GetRequest) -> Result<Option<Item>, StateError> {
        Ok(None)
    }
    async fn set(&self, _: &SetRequest) -> Result<(), StateError> {
        Ok(())
    }
    async fn delete(&self, _: &DeleteRequest) -> Result<(), StateError> {
        Ok(())
    }
}

struct FakeSecrets {
    name: String,
    journal: Journal,
}

#[async_trait]
impl Component for FakeSecrets {
    async fn close(&self) -> Result<(), ComponentError> {
        self.journal.push(format!("close {}", self.name));
        Ok(())
    }
}

#[async_trait]
impl SecretStore for FakeSecrets {
    async fn get(&self, name: &str, _: &HashMap<String, String>) -> Result<Secret, SecretError> {
        Ok(Secret::from([(
            "password".to_string(),
            format!("{name}-pw"),
        )]))
    }
    async fn bulk_get(
        &self,
        _: &HashMap<String, String>,
    ) -> Result<BTreeMap<String, Secret>, SecretError> {
        Ok(BTreeMap::new())
    }
}

fn registry(journal: &Journal) -> Registry {
    let mut r = Registry::default();
    let j = journal.clone();
    r.register::<State, _>("state.fake", &["v1"], move |init| {
        let j = j.clone();
        async move {
            let password = init.properties.get_or("password", "-").to_string();
            j.push(format!("init {} {password}", init.name));
            if init.properties.flag("fail") {
                return Err(ComponentError::Connect("refused".into()));
            }
            Ok(Arc::new(FakeStore {
                name: init.name,
                journal: j,
            }) as Arc<dyn StateStore>)
        }
    });
    let j = journal.clone();
    r.register::<SecretStores, _>("secretstores.fake", &["v1"], move |init| {
        let j = j.clone();
        async move {
            j.push(format!("init {}", init.name));
            Ok(Arc::new(FakeSecrets {
                name: init.name,
                journal: j,
            }) as Arc<dyn SecretStore>)
        }
    });
    r
}

fn doc(yaml: &str) -> Sourced {
    let value: serde_json::Value = serde_saphyr::from_str(yaml).expect("yaml");
    Sourced {
        component: decode::<Doc>(value).expect("component"),
        source: "test".into(),
    }
}

fn state(name: &str, extra: &str) -> Sourced {
    doc(&format!(
        "kind: Component\nmetadata:\n  name: {name}\nspec:\n  type: state.fake\n  version: v1\n  metadata:\n{extra}"
    ))
}

fn with_secret(name: &str, store: &str) -> Sourced {
    doc(&format!(
        "kind: Component\nmetadata:\n  name: {name}\nauth:\n  secretStore: {store}\nspec:\n  type: state.fake\n  version: v1\n  metadata:\n  - name: password\n    secretKeyRef:\n      name: db\n      key: password\n"
    ))
}

fn secrets(name: &str) -> Sourced {
    doc(&format!(
        "kind: Component\nmetadata:\n  name: {name}\nspec:\n  type: secretstores.fake\n  version: v1\n"
    ))
}

struct Fixture {
    journal: Journal,
    lifecycle: Lifecycle,
    metadata: Arc<MetadataBlock>,
    state: Arc<StateBlock>,
}

fn fixture() -> Fixture {
    let journal = Journal::default();
    let state = Arc::new(StateBlock::new("app".into(), None, HashMap::new()));
    let metadata = Arc::new(MetadataBlock::new(
        "app".into(),
        "1".into(),
        vec![],
        vec![],
        Default::default(),
    ));
    let lifecycle = Lifecycle::new(
        Arc::new(registry(&journal)),
        "app",
        "default",
        false,
        state.clone(),
        metadata.clone(),
    );
    Fixture {
        journal,
        lifecycle,
        metadata,
        state,
    }
}

impl Fixture {
    fn listed(&self) -> Vec<(String, Vec<String>)> {
        let mut v: Vec<_> = self
            .metadata
            .view()
            .components
            .into_iter()
            .map(|c| (c.name, c.capabilities))
            .collect();
        v.sort();
        v
    }
}

#[tokio::test]
async fn secret_stores_load_first_and_resolve_secret_key_refs() {
    let f = fixture();
    f.lifecycle
        .load(vec![with_secret("db", "vault"), secrets("vault")])
        .await
        .expect("loads");
    assert_eq!(f.journal.lines(), ["init vault", "init db db-pw"]);
    assert_eq!(
        f.listed(),
        [
            ("db".to_string(), vec!["ETAG".to_string()]),
            ("vault".to_string(), vec![])
        ]
    );
    assert!(f.state.check_store("db").is_ok());
}

#[tokio::test]
async fn a_component_waits_for_its_secret_store_and_starts_when_it_arrives() {
    let f = fixture();
    f.lifecycle
        .load(vec![with_secret("db", "vault")])
        .await
        .expect("parking is not an error");
    assert!(f.journal.lines().is_empty());
    assert!(f.listed().is_empty());
    f.lifecycle.apply(secrets("vault")).await;
    assert_eq!(f.journal.lines(), ["init vault", "init db db-pw"]);
    assert_eq!(f.listed().len(), 2);
}

#[tokio::test]
async fn startup_failures_are_fatal_unless_ignored_and_name_the_source() {
    let f = fixture();
    let err = f
        .lifecycle
        .load(vec![state("a", "  - name: fail\n    value: \"true\"\n")])
        .await
        .expect_err("fatal");
    let text = format!("{:#}", anyhow::Error::from(err));
    assert!(text.contains("a (state.fake/v1) from test"), "{text}");
    assert!(text.contains("refused"), "{text}");

    let f = fixture();
    let mut ignored = state("a", "  - name: fail\n    value: \"true\"\n");
    ignored.component.spec.spec.ignore_errors = true;
    f.lifecycle
        .load(vec![ignored, state("b", "    []\n")])
        .await
        .expect("ignored");
    assert_eq!(f.listed().len(), 1);

    let f = fixture();
    let err = f
        .lifecycle
        .load(vec![state("a", "    []\n"), state("a", "    []\n")])
        .await
        .expect_err("duplicate");
    assert!(
        err.to_string()
            .contains("duplicate definition of Component name a")
    );
}

#[tokio::test]
async fn a_changed_component_replaces_the_old_one_which_is_closed() {
    let f = fixture();
    f.lifecycle
        .load(vec![state("a", "    []\n")])
        .await
        .expect("loads");
    // The same document again changes nothing.
    f.lifecycle.apply(state("a", "    []\n")).await;
    assert_eq!(f.journal.lines(), ["init a -"]);
    f.lifecycle
        .apply(state("a", "  - name: password\n    value: two\n"))
        .await;
    assert_eq!(f.journal.lines(), ["init a -", "init a two", "close a"]);
}

#[tokio::test]
async fn a_change_that_fails_keeps_the_old_version_serving() {
    let f = fixture();
    f.lifecycle
        .load(vec![state("a", "    []\n")])
        .await
        .expect("loads");
    f.lifecycle
        .apply(state("a", "  - name: fail\n    value: \"true\"\n"))
        .await;
    assert_eq!(f.journal.lines(), ["init a -", "init a -"]);
    assert!(f.state.check_store("a").is_ok());
    assert_eq!(f.listed().len(), 1);
}

#[tokio::test]
async fn removal_reconcile_and_shutdown_close_components() {
    let f = fixture();
    f.lifecycle
        .load(vec![
            state("a", "    []\n"),
            state("b", "    []\n"),
            state("c", "    []\n"),
        ])
        .await
        .expect("loads");
    f.lifecycle.remove("a").await;
    assert!(f.state.check_store("a").is_err());
    // The folders now hold b and a new d: c goes, d comes.
    f.lifecycle
        .reconcile(vec![state("b", "    []\n"), state("d", "    []\n")])
        .await;
    let names: Vec<String> = f.listed().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["b", "d"]);
    f.lifecycle.close_all().await;
    let mut closed: Vec<String> = f
        .journal
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("close"))
        .collect();
    closed.sort();
    assert_eq!(closed, ["close a", "close b", "close c", "close d"]);
}

#[tokio::test]
async fn unknown_types_are_refused_with_daprs_words() {
    let f = fixture();
    let err = f
        .lifecycle
        .load(vec![doc(
            "kind: Component\nmetadata:\n  name: x\nspec:\n  type: pubsub.nosuch\n  version: v1\n",
        )])
        .await
        .expect_err("unknown");
    let text = format!("{:#}", anyhow::Error::from(err));
    assert!(
        text.contains("couldn't find message bus pubsub.nosuch/v1"),
        "{text}"
    );
}
