//! Every Deployment and StatefulSet annotated `dapr.io/enabled: "true"` gets a headless
//! `<app-id>-dapr` Service in front of its sidecars, owned by the workload so that
//! Kubernetes removes it with the workload; removing the annotation removes it too. This is
//! the name Kubernetes name resolution gives other sidecars.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use thiserror::Error;

const FIELD_MANAGER: &str = "dapr-operator";
const ENABLED: &str = "dapr.io/enabled";
const APP_ID: &str = "dapr.io/app-id";
const METRICS_PORT: &str = "dapr.io/metrics-port";
/// Marks the Services this reconciler manages, so it only ever deletes its own.
const MANAGED_LABEL: &str = "dapr.io/enabled";

#[derive(Debug, Error)]
pub enum ReconcileError {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("workload has no namespace or uid")]
    Incomplete,
}

/// Counts for the metrics endpoint.
#[derive(Default)]
pub struct ServiceMetrics {
    pub created: AtomicU64,
    pub deleted: AtomicU64,
    pub reconcile_errors: AtomicU64,
}

struct Ctx {
    client: kube::Client,
    metrics: Arc<ServiceMetrics>,
}

/// What the reconciler needs from a workload, whichever kind it is.
trait Workload: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + 'static {
    fn match_labels(&self) -> BTreeMap<String, String>;
    fn pod_annotations(&self) -> BTreeMap<String, String>;
}

impl Workload for Deployment {
    fn match_labels(&self) -> BTreeMap<String, String> {
        self.spec.selector.match_labels.clone().unwrap_or_default()
    }
    fn pod_annotations(&self) -> BTreeMap<String, String> {
        self.spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.clone())
            .unwrap_or_default()
    }
}

impl Workload for StatefulSet {
    fn match_labels(&self) -> BTreeMap<String, String> {
        self.spec.selector.match_labels.clone().unwrap_or_default()
    }
    fn pod_annotations(&self) -> BTreeMap<String, String> {
        self.spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.clone())
            .unwrap_or_default()
    }
}

fn truthy(v: Option<&String>) -> bool {
    matches!(
        v.map(|s| s.trim().to_ascii_lowercase()).as_deref(),
        Some("true" | "1" | "yes" | "y" | "on")
    )
}

/// The Dapr annotations as Dapr reads them: from the Pod template (where users put them),
/// falling back to the workload's own metadata.
fn annotation<'a>(
    w: &'a impl Workload,
    pod: &'a BTreeMap<String, String>,
    key: &str,
) -> Option<&'a String> {
    pod.get(key)
        .or_else(|| w.meta().annotations.as_ref()?.get(key))
}

/// `dapr.io/sidecar-svc-annotations` on the Pod template: `key=value` pairs, comma
/// separated, added to the Service; the operator's own keys are not overridden.
const SVC_ANNOTATIONS: &str = "dapr.io/sidecar-svc-annotations";

fn add_service_annotations(annotations: &mut BTreeMap<String, String>, text: &str) {
    for pair in text.split(',').map(str::trim) {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        if annotations.contains_key(key) {
            tracing::warn!("ignoring {SVC_ANNOTATIONS} key {key:?}: the operator manages it");
            continue;
        }
        annotations.insert(key.to_string(), value.trim().to_string());
    }
}

/// The Service a workload should have, if any.
fn desired<W: Workload>(w: &W) -> Option<Service> {
    let pod = w.pod_annotations();
    if !truthy(annotation(w, &pod, ENABLED)) || w.meta().deletion_timestamp.is_some() {
        return None;
    }
    let app_id = annotation(w, &pod, APP_ID)
        .cloned()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| w.name_any());
    let metrics_port: i32 = annotation(w, &pod, METRICS_PORT)
        .and_then(|p| p.parse().ok())
        .unwrap_or(9090);
    let port = |name: &str, port: i32, target: i32| ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::Int(target)),
        protocol: Some("TCP".into()),
        ..Default::default()
    };
    let owner = w.controller_owner_ref(&())?;
    let mut annotations = BTreeMap::from([
        (APP_ID.to_string(), app_id.clone()),
        ("prometheus.io/probe".into(), "true".into()),
        ("prometheus.io/scrape".into(), "true".into()),
        ("prometheus.io/port".into(), metrics_port.to_string()),
        ("prometheus.io/path".into(), "/".into()),
    ]);
    if let Some(extra) = pod.get(SVC_ANNOTATIONS) {
        add_service_annotations(&mut annotations, extra);
    }
    Some(Service {
        metadata: ObjectMeta {
            name: Some(format!("{app_id}-dapr")),
            namespace: w.namespace(),
            labels: Some(BTreeMap::from([(MANAGED_LABEL.into(), "true".into())])),
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(w.match_labels()),
            cluster_ip: Some("None".into()),
            ports: Some(vec![
                port("dapr-http", 80, 3500),
                port("dapr-grpc", 50001, 50001),
                port("dapr-internal", 50002, 50002),
                port("dapr-metrics", metrics_port, metrics_port),
            ]),
            ..Default::default()
        }),
        status: None,
    })
}

fn owned_by(s: &Service, uid: &str) -> bool {
    s.metadata
        .owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|o: &OwnerReference| o.uid == uid)
}

async fn reconcile<W: Workload>(w: Arc<W>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let (Some(ns), Some(uid)) = (w.namespace(), w.meta().uid.clone()) else {
        return Err(ReconcileError::Incomplete);
    };
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    let want = desired(w.as_ref());
    let keep = want.as_ref().and_then(|s| s.metadata.name.clone());
    if let Some(svc) = &want {
        let name = keep.clone().unwrap_or_default();
        let existed = services.get_opt(&name).await?.is_some();
        services
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(svc),
            )
            .await?;
        if !existed {
            ctx.metrics.created.fetch_add(1, Ordering::Relaxed);
            tracing::info!(namespace = %ns, service = %name, "created the Dapr service for {}", w.name_any());
        }
    }
    // Any other Service of ours that this workload owns is stale: the annotation was
    // removed, or the app id changed.
    let ours = services
        .list(&ListParams::default().labels(&format!("{MANAGED_LABEL}=true")))
        .await?;
    for s in ours.items.iter().filter(|s| owned_by(s, &uid)) {
        let name = s.name_any();
        if Some(&name) == keep.as_ref() {
            continue;
        }
        services.delete(&name, &DeleteParams::default()).await?;
        ctx.metrics.deleted.fetch_add(1, Ordering::Relaxed);
        tracing::info!(namespace = %ns, service = %name, "deleted the Dapr service of {}", w.name_any());
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

fn on_error<W: Workload>(_w: Arc<W>, e: &ReconcileError, ctx: Arc<Ctx>) -> Action {
    ctx.metrics.reconcile_errors.fetch_add(1, Ordering::Relaxed);
    tracing::warn!("service reconcile failed: {e}");
    Action::requeue(Duration::from_secs(2))
}

async fn control<W>(client: kube::Client, namespace: Option<String>, metrics: Arc<ServiceMetrics>)
where
    W: Workload + serde::de::DeserializeOwned,
    W: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        metrics,
    });
    let (workloads, services) = match &namespace {
        Some(ns) => (
            Api::<W>::namespaced(client.clone(), ns),
            Api::<Service>::namespaced(client, ns),
        ),
        None => (Api::<W>::all(client.clone()), Api::<Service>::all(client)),
    };
    Controller::new(workloads, watcher::Config::default())
        .owns(services, watcher::Config::default())
        .shutdown_on_signal()
        .run(reconcile::<W>, on_error::<W>, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// Runs both reconcilers until the future is dropped (when leadership is lost), over one
/// namespace or all of them.
pub async fn run(client: kube::Client, namespace: Option<String>, metrics: Arc<ServiceMetrics>) {
    tokio::join!(
        control::<Deployment>(client.clone(), namespace.clone(), metrics.clone()),
        control::<StatefulSet>(client, namespace, metrics),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DeploymentSpec;
    use k8s_openapi::api::core::v1::PodTemplateSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn deployment(annotations: &[(&str, &str)]) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("shop".into()),
                uid: Some("u-1".into()),
                ..Default::default()
            },
            spec: DeploymentSpec {
                selector: LabelSelector {
                    match_labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        annotations: Some(
                            annotations
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_string()))
                                .collect(),
                        ),
                        ..Default::default()
                    }),
                    spec: None,
                },
                ..Default::default()
            },
            status: None,
        }
    }

    #[test]
    fn an_annotated_workload_gets_dapr_ports_under_its_app_id() {
        let svc = desired(&deployment(&[(ENABLED, "true"), (APP_ID, "orders")])).expect("service");
        assert_eq!(svc.metadata.name.as_deref(), Some("orders-dapr"));
        let spec = svc.spec.expect("spec");
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        let ports: Vec<(String, i32)> = spec
            .ports
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.name.unwrap_or_default(), p.port))
            .collect();
        assert_eq!(
            ports,
            [
                ("dapr-http".to_string(), 80),
                ("dapr-grpc".to_string(), 50001),
                ("dapr-internal".to_string(), 50002),
                ("dapr-metrics".to_string(), 9090)
            ]
        );
        let owner = &svc.metadata.owner_references.expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Deployment", "u-1")
        );
    }

    #[test]
    fn sidecar_svc_annotations_reach_the_service_but_not_over_the_operators_own() {
        let svc = desired(&deployment(&[
            (ENABLED, "true"),
            (APP_ID, "orders"),
            (
                SVC_ANNOTATIONS,
                "team=payments, cloud.example/lb = internal,dapr.io/app-id=evil,junk",
            ),
        ]))
        .expect("service");
        let a = svc.metadata.annotations.expect("annotations");
        assert_eq!(a.get("team").map(String::as_str), Some("payments"));
        assert_eq!(
            a.get("cloud.example/lb").map(String::as_str),
            Some("internal")
        );
        assert_eq!(a.get(APP_ID).map(String::as_str), Some("orders"));
        assert!(!a.contains_key("junk"));
    }

    #[test]
    fn no_service_without_the_annotation() {
        assert!(desired(&deployment(&[])).is_none());
        assert!(desired(&deployment(&[(ENABLED, "false")])).is_none());
        let svc = desired(&deployment(&[(ENABLED, "true")])).expect("service");
        assert_eq!(
            svc.metadata.name.as_deref(),
            Some("web-dapr"),
            "app id defaults to the name"
        );
    }
}
