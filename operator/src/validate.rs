//! Reports what is wrong with a Component where its owner looks: as a Warning Event on the
//! object (`kubectl describe component ...`). The CRD schema refuses malformed documents;
//! this catches what only the cluster can tell, such as a `secretKeyRef` to a Secret that
//! does not exist. Only the leader reports, so replicas do not repeat each other.

use std::sync::Arc;

use kube::Resource;
use kube::api::DynamicObject;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::broadcast::error::RecvError;

use crate::cache::{Cache, ChangeType};
use crate::secrets;

fn reference(o: &DynamicObject) -> k8s_openapi::api::core::v1::ObjectReference {
    k8s_openapi::api::core::v1::ObjectReference {
        api_version: o.types.as_ref().map(|t| t.api_version.clone()),
        kind: o.types.as_ref().map(|t| t.kind.clone()),
        name: o.meta().name.clone(),
        namespace: o.meta().namespace.clone(),
        uid: o.meta().uid.clone(),
        resource_version: o.meta().resource_version.clone(),
        ..Default::default()
    }
}

/// The problems a component has, as (reason, message) pairs.
async fn problems(client: &kube::Client, o: &DynamicObject) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let kind = o
        .data
        .pointer("/spec/type")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if !kind.contains('.') {
        out.push((
            "InvalidComponentType".to_string(),
            format!("spec.type {kind:?} is not of the form <category>.<name>, such as state.redis"),
        ));
    }
    let (_, secret_problems) = secrets::resolve(client, o).await;
    for p in secret_problems {
        out.push(("SecretNotFound".to_string(), p.to_string()));
    }
    out
}

async fn check(client: &kube::Client, recorder: &Recorder, o: &DynamicObject) {
    for (reason, note) in problems(client, o).await {
        tracing::warn!(
            component = o.meta().name.as_deref().unwrap_or(""),
            namespace = o.meta().namespace.as_deref().unwrap_or(""),
            "{reason}: {note}"
        );
        let event = Event {
            type_: EventType::Warning,
            reason,
            note: Some(note),
            action: "Validate".into(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&event, &reference(o)).await {
            tracing::warn!("recording an event failed: {e}");
        }
    }
}

/// Checks every component now and each one that changes, until dropped.
pub async fn run(client: kube::Client, components: Arc<Cache>, identity: String) {
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "dapr-operator".into(),
            instance: Some(identity),
        },
    );
    let mut feed = components.subscribe();
    components.wait_synced().await;
    for o in components.all() {
        check(&client, &recorder, &o).await;
    }
    loop {
        match feed.recv().await {
            Ok(c) if c.change != ChangeType::Deleted => check(&client, &recorder, &c.object).await,
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}
