//! The cache on its own (what each change publishes) and following a mocked API server
//! through list, watch and relist. `FakeApi` is shared with the API's tests: an axum
//! router used as the kube client's service, speaking just the list/watch JSON the
//! watcher reads and the Secrets the API resolves.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::*;
use crate::kinds::{self, Kind};

/// An API server in memory: each kind's list, a queue of watch events per kind (handed to
/// the first watch; later watches just stay open), and Secrets.
#[derive(Clone, Default)]
pub(crate) struct FakeApi {
    state: Arc<Mutex<FakeState>>,
}

#[derive(Default)]
struct FakeState {
    lists: HashMap<&'static str, Vec<Value>>,
    events: HashMap<&'static str, mpsc::UnboundedSender<Value>>,
    pending: HashMap<&'static str, mpsc::UnboundedReceiver<Value>>,
    secrets: HashMap<(String, String), Value>,
    secret_reads: usize,
}

impl FakeState {
    fn queue(&mut self, plural: &'static str) -> &mpsc::UnboundedSender<Value> {
        if !self.events.contains_key(plural) {
            let (tx, rx) = mpsc::unbounded_channel();
            self.events.insert(plural, tx);
            self.pending.insert(plural, rx);
        }
        &self.events[plural]
    }
}

/// A `dapr.io` object as the API server stores it.
pub(crate) fn object(kind: Kind, namespace: &str, name: &str, rv: u32, spec: Value) -> Value {
    json!({
        "apiVersion": format!("{}/{}", kinds::GROUP, kind.version),
        "kind": kind.kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": rv.to_string(),
            "uid": format!("{namespace}-{name}"),
        },
        "spec": spec,
    })
}

impl FakeApi {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the next list of `kind` returns.
    pub(crate) fn set_list(&self, kind: Kind, items: Vec<Value>) {
        self.lock().lists.insert(kind.plural, items);
    }

    /// Queues a watch event (`ADDED`, `MODIFIED`, `DELETED`, `ERROR`) for `kind`.
    pub(crate) fn event(&self, kind: Kind, event: &str, object: Value) {
        let mut state = self.lock();
        let _ = state
            .queue(kind.plural)
            .send(json!({ "type": event, "object": object }));
    }

    pub(crate) fn secret(&self, namespace: &str, name: &str, data: &[(&str, &[u8])]) {
        let b64 = base64::engine::general_purpose::STANDARD;
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(b64.encode(v))))
            .collect();
        self.lock().secrets.insert(
            (namespace.into(), name.into()),
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": { "name": name, "namespace": namespace },
                "data": data,
            }),
        );
    }

    pub(crate) fn secret_reads(&self) -> usize {
        self.lock().secret_reads
    }

    pub(crate) fn client(&self) -> kube::Client {
        let router = axum::Router::new().fallback(serve).with_state(self.clone());
        kube::Client::new(router, "default")
    }
}

fn status(code: StatusCode, reason: &str) -> Response {
    let body = json!({
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": reason,
        "reason": reason,
        "code": code.as_u16(),
    });
    (code, axum::Json(body)).into_response()
}

async fn serve(State(api): State<FakeApi>, uri: Uri) -> Response {
    let parts: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let watching = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    match parts.as_slice() {
        ["apis", "dapr.io", version, plural] => {
            let Some(kind) = [
                kinds::COMPONENT,
                kinds::CONFIGURATION,
                kinds::SUBSCRIPTION,
                kinds::RESILIENCY,
                kinds::HTTP_ENDPOINT,
            ]
            .into_iter()
            .find(|k| k.plural == *plural && k.version == *version) else {
                return status(StatusCode::NOT_FOUND, "NotFound");
            };
            if watching {
                watch_response(&api, kind)
            } else {
                let items = api
                    .lock()
                    .lists
                    .get(kind.plural)
                    .cloned()
                    .unwrap_or_default();
                axum::Json(json!({
                    "apiVersion": format!("{}/{}", kinds::GROUP, kind.version),
                    "kind": format!("{}List", kind.kind),
                    "metadata": { "resourceVersion": "1" },
                    "items": items,
                }))
                .into_response()
            }
        }
        ["api", "v1", "namespaces", ns, "secrets", name] => {
            let mut state = api.lock();
            state.secret_reads += 1;
            match state.secrets.get(&(ns.to_string(), name.to_string())) {
                Some(s) => axum::Json(s.clone()).into_response(),
                None => status(StatusCode::NOT_FOUND, "NotFound"),
            }
        }
        _ => status(StatusCode::NOT_FOUND, "NotFound"),
    }
}

/// A watch: the queued events as JSON lines, then (like a quiet API server) nothing.
fn watch_response(api: &FakeApi, kind: Kind) -> Response {
    let rx = {
        let mut state = api.lock();
        state.queue(kind.plural);
        state.pending.remove(kind.plural)
    };
    let lines = match rx {
        Some(rx) => futures::stream::unfold(rx, |mut rx| async move {
            let event = rx.recv().await?;
            let mut line = serde_json::to_vec(&event).unwrap_or_default();
            line.push(b'\n');
            Some((Ok::<_, Infallible>(Bytes::from(line)), rx))
        })
        .boxed(),
        None => futures::stream::pending::<Result<Bytes, Infallible>>().boxed(),
    };
    Body::from_stream(lines).into_response()
}

/// A cache of `kind` following `api`, already synced.
pub(crate) async fn following(api: &FakeApi, kind: Kind) -> Arc<Cache> {
    let cache = Cache::new(kind);
    let resource = kind.api_resource();
    tokio::spawn(
        cache
            .clone()
            .run(Api::<DynamicObject>::all_with(api.client(), &resource)),
    );
    tokio::time::timeout(Duration::from_secs(10), cache.wait_synced())
        .await
        .expect("synced");
    cache
}

fn dynamic(namespace: &str, name: &str, rv: u32) -> DynamicObject {
    serde_json::from_value(object(
        kinds::COMPONENT,
        namespace,
        name,
        rv,
        json!({"type": "state.in-memory", "version": "v1"}),
    ))
    .expect("object")
}

fn names(objects: &[Arc<DynamicObject>]) -> Vec<String> {
    objects
        .iter()
        .map(|o| o.metadata.name.clone().unwrap_or_default())
        .collect()
}

/// Every change published so far: (type, namespace, name, resource version).
fn drain(rx: &mut broadcast::Receiver<Arc<Change>>) -> Vec<(ChangeType, String, String, String)> {
    let mut out = Vec::new();
    while let Ok(c) = rx.try_recv() {
        out.push((
            c.change,
            c.namespace.clone(),
            c.object.metadata.name.clone().unwrap_or_default(),
            c.object
                .metadata
                .resource_version
                .clone()
                .unwrap_or_default(),
        ));
    }
    out
}

fn change(t: ChangeType, ns: &str, name: &str, rv: &str) -> (ChangeType, String, String, String) {
    (t, ns.into(), name.into(), rv.into())
}

#[test]
fn each_change_is_published_once_and_a_resync_without_change_is_silent() {
    let cache = Cache::new(kinds::COMPONENT);
    let mut rx = cache.subscribe();
    cache.apply(dynamic("shop", "a", 1));
    cache.apply(dynamic("shop", "a", 1));
    cache.apply(dynamic("shop", "a", 2));
    cache.apply(dynamic("other", "b", 1));
    cache.delete(&dynamic("shop", "a", 2));
    cache.delete(&dynamic("shop", "a", 2));
    assert_eq!(
        drain(&mut rx),
        [
            change(ChangeType::Created, "shop", "a", "1"),
            change(ChangeType::Updated, "shop", "a", "2"),
            change(ChangeType::Created, "other", "b", "1"),
            change(ChangeType::Deleted, "shop", "a", "2"),
        ]
    );
    assert!(cache.get("shop", "a").is_none());
}

#[test]
fn a_prune_deletes_what_the_list_no_longer_has() {
    let cache = Cache::new(kinds::COMPONENT);
    cache.apply(dynamic("shop", "a", 1));
    cache.apply(dynamic("shop", "b", 1));
    let mut rx = cache.subscribe();
    let listed: HashSet<Key> = [("shop".to_string(), "b".to_string())].into();
    cache.prune(&listed);
    assert_eq!(
        drain(&mut rx),
        [change(ChangeType::Deleted, "shop", "a", "1")]
    );
    assert_eq!(names(&cache.all()), ["b"]);
}

#[test]
fn a_list_is_one_namespace_in_name_order() {
    let cache = Cache::new(kinds::COMPONENT);
    for (ns, name) in [
        ("shop", "z"),
        ("shop2", "a"),
        ("sho", "b"),
        ("shop", "a"),
        ("", "stray"),
    ] {
        cache.apply(dynamic(ns, name, 1));
    }
    assert_eq!(names(&cache.list("shop")), ["a", "z"]);
    assert_eq!(names(&cache.list("sho")), ["b"]);
    assert!(cache.list("nowhere").is_empty());
    assert_eq!(cache.all().len(), 5);
    assert_eq!(
        cache
            .get("shop2", "a")
            .and_then(|o| o.metadata.namespace.clone()),
        Some("shop2".into())
    );
    assert!(cache.get("shop", "b").is_none());
}

#[tokio::test]
async fn waiting_for_the_first_sync_blocks_until_it_happens() {
    let cache = Cache::new(kinds::COMPONENT);
    assert!(!cache.is_synced());
    let waiting = tokio::time::timeout(Duration::from_millis(50), cache.wait_synced()).await;
    assert!(waiting.is_err(), "not synced yet");
    let waiter = tokio::spawn({
        let cache = cache.clone();
        async move { cache.wait_synced().await }
    });
    cache.synced.send_replace(true);
    tokio::time::timeout(Duration::from_secs(1), waiter)
        .await
        .expect("released")
        .expect("task");
    assert!(cache.is_synced());
}

#[tokio::test]
async fn the_cache_lists_then_follows_the_watch() {
    let api = FakeApi::new();
    let spec = json!({"type": "state.in-memory", "version": "v1"});
    api.set_list(
        kinds::COMPONENT,
        vec![
            object(kinds::COMPONENT, "shop", "a", 5, spec.clone()),
            object(kinds::COMPONENT, "other", "b", 6, spec.clone()),
        ],
    );
    let cache = Cache::new(kinds::COMPONENT);
    let mut rx = cache.subscribe();
    let resource = kinds::COMPONENT.api_resource();
    tokio::spawn(
        cache
            .clone()
            .run(Api::<DynamicObject>::all_with(api.client(), &resource)),
    );
    tokio::time::timeout(Duration::from_secs(10), cache.wait_synced())
        .await
        .expect("synced");
    assert_eq!(names(&cache.list("shop")), ["a"]);
    assert_eq!(names(&cache.list("other")), ["b"]);

    api.event(
        kinds::COMPONENT,
        "ADDED",
        object(kinds::COMPONENT, "shop", "c", 7, spec.clone()),
    );
    api.event(
        kinds::COMPONENT,
        "MODIFIED",
        object(
            kinds::COMPONENT,
            "shop",
            "a",
            8,
            json!({"type": "state.redis"}),
        ),
    );
    api.event(
        kinds::COMPONENT,
        "DELETED",
        object(kinds::COMPONENT, "other", "b", 9, spec.clone()),
    );
    test_support::eventually(Duration::from_secs(10), "the watch applied", || {
        let done = cache.get("other", "b").is_none();
        async move { done }
    })
    .await;
    assert_eq!(names(&cache.list("shop")), ["a", "c"]);
    let a = cache.get("shop", "a").expect("a");
    assert_eq!(a.data["spec"]["type"], "state.redis", "the new object");
    assert!(cache.list("other").is_empty());
    assert_eq!(
        drain(&mut rx),
        [
            change(ChangeType::Created, "shop", "a", "5"),
            change(ChangeType::Created, "other", "b", "6"),
            change(ChangeType::Created, "shop", "c", "7"),
            change(ChangeType::Updated, "shop", "a", "8"),
            change(ChangeType::Deleted, "other", "b", "6"),
        ]
    );
    assert!(cache.is_synced());
}

#[tokio::test]
async fn after_an_expired_watch_the_relist_drops_what_is_gone() {
    let api = FakeApi::new();
    let spec = json!({"type": "state.in-memory", "version": "v1"});
    api.set_list(
        kinds::COMPONENT,
        vec![
            object(kinds::COMPONENT, "shop", "a", 5, spec.clone()),
            object(kinds::COMPONENT, "shop", "b", 6, spec.clone()),
        ],
    );
    let cache = following(&api, kinds::COMPONENT).await;
    let mut rx = cache.subscribe();
    // While the operator was not looking, `a` went away and `d` arrived.
    api.set_list(
        kinds::COMPONENT,
        vec![
            object(kinds::COMPONENT, "shop", "b", 6, spec.clone()),
            object(kinds::COMPONENT, "shop", "d", 10, spec.clone()),
        ],
    );
    api.event(
        kinds::COMPONENT,
        "ERROR",
        json!({
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": "too old resource version: 5 (9)",
            "reason": "Expired",
            "code": 410,
        }),
    );
    test_support::eventually(Duration::from_secs(15), "relisted", || {
        let done = cache.get("shop", "a").is_none();
        async move { done }
    })
    .await;
    assert_eq!(names(&cache.list("shop")), ["b", "d"]);
    assert_eq!(
        drain(&mut rx),
        [
            change(ChangeType::Created, "shop", "d", "10"),
            change(ChangeType::Deleted, "shop", "a", "5"),
        ],
        "b did not change and is not republished"
    );
}
