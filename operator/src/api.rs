//! `dapr.proto.operator.v1.Operator`: what sidecars in Kubernetes mode load at startup
//! and follow while they run. Every answer is limited to the namespace the caller names
//! (from its certificate once mTLS lands); objects travel as their Kubernetes JSON.

use std::future::Future;
use std::sync::Arc;

use kube::api::DynamicObject;
use proto::operator::v1 as pb;
use proto::operator::v1::operator_server::Operator;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::cache::{Cache, Change, ChangeType};
use crate::secrets;

/// The caches the API answers from, one per kind.
#[derive(Clone)]
pub struct Caches {
    pub components: Arc<Cache>,
    pub configurations: Arc<Cache>,
    pub subscriptions: Arc<Cache>,
    pub resiliencies: Arc<Cache>,
    pub http_endpoints: Arc<Cache>,
}

impl Caches {
    pub fn all(&self) -> [&Arc<Cache>; 5] {
        [
            &self.components,
            &self.configurations,
            &self.subscriptions,
            &self.resiliencies,
            &self.http_endpoints,
        ]
    }
}

pub struct OperatorApi {
    caches: Caches,
    client: kube::Client,
    /// Under mTLS a caller's namespace is the one in its certificate.
    mtls: bool,
}

impl OperatorApi {
    pub fn new(caches: Caches, client: kube::Client, mtls: bool) -> Self {
        Self {
            caches,
            client,
            mtls,
        }
    }

    /// The namespace a caller may read: the one it asks for, and under mTLS only if it
    /// is the one its certificate names.
    fn scope<T>(&self, request: &Request<T>, asked: &str) -> Result<String, Status> {
        if !self.mtls {
            return namespace(asked);
        }
        let peer = request
            .extensions()
            .get::<tonic::transport::server::TlsConnectInfo<tonic::transport::server::TcpConnectInfo>>()
            .and_then(|i| i.peer_certs())
            .and_then(|certs| security::peer_id(&certs))
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        if !asked.is_empty() && asked != peer.namespace {
            return Err(Status::permission_denied(format!(
                "{peer} may not read namespace {asked:?}"
            )));
        }
        Ok(peer.namespace)
    }
}

type EventStream<T> = ReceiverStream<Result<T, Status>>;

fn namespace(ns: &str) -> Result<String, Status> {
    if ns.is_empty() {
        return Err(Status::invalid_argument("a namespace is required"));
    }
    Ok(ns.to_string())
}

fn to_json(o: &DynamicObject) -> Vec<u8> {
    serde_json::to_vec(o).unwrap_or_default()
}

fn event_type(c: ChangeType) -> i32 {
    match c {
        ChangeType::Created => pb::ResourceEventType::Created as i32,
        ChangeType::Updated => pb::ResourceEventType::Updated as i32,
        ChangeType::Deleted => pb::ResourceEventType::Deleted as i32,
    }
}

/// Turns the cache's change feed into one caller's stream: only its namespace, ended
/// with an error if it falls too far behind (the caller then lists again).
fn follow<T, F, Fut>(cache: &Arc<Cache>, namespace: String, make: F) -> EventStream<T>
where
    T: Send + 'static,
    F: Fn(Arc<Change>) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send,
{
    let mut feed = cache.subscribe();
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                next = feed.recv() => match next {
                    Ok(change) if change.namespace == namespace => {
                        if tx.send(Ok(make(change).await)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        let msg = format!("the stream fell {n} changes behind; list again");
                        let _ = tx.send(Err(Status::aborted(msg))).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
            }
        }
    });
    ReceiverStream::new(rx)
}

/// The change's JSON, encoded once for all subscribers.
async fn encoded(c: &Change) -> Vec<u8> {
    c.encoded
        .get_or_init(|| async { to_json(&c.object) })
        .await
        .clone()
}

async fn list(cache: &Cache, namespace: &str) -> Vec<Vec<u8>> {
    cache.wait_synced().await;
    cache.list(namespace).iter().map(|o| to_json(o)).collect()
}

async fn get(cache: &Cache, namespace: &str, name: &str) -> Result<Vec<u8>, Status> {
    cache.wait_synced().await;
    cache
        .get(namespace, name)
        .map(|o| to_json(&o))
        .ok_or_else(|| {
            Status::not_found(format!(
                "{} {name:?} not found in namespace {namespace:?}",
                cache.kind.kind
            ))
        })
}

impl OperatorApi {
    async fn component_json(&self, o: &DynamicObject) -> Vec<u8> {
        let (json, problems) = secrets::resolve(&self.client, o).await;
        for p in problems {
            tracing::warn!(
                component = o.metadata.name.as_deref().unwrap_or(""),
                "secretKeyRef not resolved: {p}"
            );
        }
        serde_json::to_vec(&json).unwrap_or_default()
    }
}

#[tonic::async_trait]
impl Operator for OperatorApi {
    type ComponentUpdateStream = EventStream<pb::ComponentUpdateEvent>;
    type SubscriptionUpdateStream = EventStream<pb::SubscriptionUpdateEvent>;
    type HTTPEndpointUpdateStream = EventStream<pb::HttpEndpointUpdateEvent>;
    type ConfigurationUpdateStream = EventStream<pb::ConfigurationUpdateEvent>;
    type ResiliencyUpdateStream = EventStream<pb::ResiliencyUpdateEvent>;

    async fn component_update(
        &self,
        request: Request<pb::ComponentUpdateRequest>,
    ) -> Result<Response<Self::ComponentUpdateStream>, Status> {
        let ns = self.scope(&request, &request.get_ref().namespace)?;
        let client = self.client.clone();
        Ok(Response::new(follow(
            &self.caches.components,
            ns,
            move |c| {
                let client = client.clone();
                async move {
                    let component = c
                        .encoded
                        .get_or_init(|| async {
                            if c.change == ChangeType::Deleted {
                                to_json(&c.object)
                            } else {
                                let (json, _) = secrets::resolve(&client, &c.object).await;
                                serde_json::to_vec(&json).unwrap_or_default()
                            }
                        })
                        .await
                        .clone();
                    pb::ComponentUpdateEvent {
                        component,
                        r#type: event_type(c.change),
                    }
                }
            },
        )))
    }

    async fn list_components(
        &self,
        request: Request<pb::ListComponentsRequest>,
    ) -> Result<Response<pb::ListComponentResponse>, Status> {
        let ns = self.scope(&request, &request.get_ref().namespace)?;
        let cache = &self.caches.components;
        cache.wait_synced().await;
        let mut components = Vec::new();
        for o in cache.list(&ns) {
            components.push(self.component_json(&o).await);
        }
        Ok(Response::new(pb::ListComponentResponse { components }))
    }

    async fn get_configuration(
        &self,
        request: Request<pb::GetConfigurationRequest>,
    ) -> Result<Response<pb::GetConfigurationResponse>, Status> {
        let r = request.get_ref();
        let ns = self.scope(&request, &r.namespace)?;
        let configuration = get(&self.caches.configurations, &ns, &r.name).await?;
        Ok(Response::new(pb::GetConfigurationResponse {
            configuration,
        }))
    }

    /// The pre-namespaced call: every namespace's subscriptions, as Dapr's did.
    async fn list_subscriptions(
        &self,
        request: Request<()>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        let cache = &self.caches.subscriptions;
        cache.wait_synced().await;
        // Under mTLS, still only the caller's own namespace.
        let subscriptions = if self.mtls {
            let ns = self.scope(&request, "")?;
            cache.list(&ns).iter().map(|o| to_json(o)).collect()
        } else {
            cache.all().iter().map(|o| to_json(o)).collect()
        };
        Ok(Response::new(pb::ListSubscriptionsResponse {
            subscriptions,
        }))
    }

    async fn get_resiliency(
        &self,
        request: Request<pb::GetResiliencyRequest>,
    ) -> Result<Response<pb::GetResiliencyResponse>, Status> {
        let r = request.get_ref();
        let ns = self.scope(&request, &r.namespace)?;
        let resiliency = get(&self.caches.resiliencies, &ns, &r.name).await?;
        Ok(Response::new(pb::GetResiliencyResponse { resiliency }))
    }

    async fn list_resiliency(
        &self,
        request: Request<pb::ListResiliencyRequest>,
    ) -> Result<Response<pb::ListResiliencyResponse>, Status> {
        let ns = self.scope(&request, &request.get_ref().namespace)?;
        let resiliencies = list(&self.caches.resiliencies, &ns).await;
        Ok(Response::new(pb::ListResiliencyResponse { resiliencies }))
    }

    async fn list_subscriptions_v2(
        &self,
        request: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        let ns = self.scope(&request, &request.get_ref().namespace)?;
        let subscriptions = list(&self.caches.subscriptions, &ns).await;
        Ok(Response::new(pb::ListSubscriptionsResponse {
            subscriptions,
        }))
    }

    async fn subscription_update(
        &self,
        request: Request<pb::SubscriptionUpdateRequest>,
    ) -> Result<Response<Self::SubscriptionUpdateStream>, Status> {
        let ns = self.scope(&request, &request.get_ref().namespace)?;
        Ok(Response::new(follow(
            &self.caches.subscriptions,
            ns,
            |c| async move {
                pb::SubscriptionUpdateEvent {
                    subscription: encoded(&c).await,
                    r#type: event_type(c.change),
                }
            },
        )))
    }

    async fn list_http_endpoints(
        &self,
        request: Request<pb::ListHttpEndpointsRequest>,
    ) -> Result<Response<pb::ListHttpEndpointsResponse>, Status> {
        let ns = self.scope(&request, &request.get_ref().namespace)?;
        let http_endpoints = list(&self.caches.http_endpoints, &ns).await;
        Ok(Response::new(pb::ListHttpEndpointsResponse {
            http_endpoints,
        }))
    }

    async fn http_endpoint_update(
        &self,
        request: Request<pb::HttpEndpointUpdateRequest>,
    ) -> Result<Response<Self::HTTPEndpointUpdateStream>, Status> {
        let ns = self.scope(&request, &request.get_ref().namespace)?;
        Ok(Response::new(follow(
            &self.caches.http_endpoints,
            ns,
            |c| async move {
                pb::HttpEndpointUpdateEvent {
                    http_endpoints: encoded(&c).await,
                    r#type: event_type(c.change),
                }
            },
        )))
    }

    async fn configuration_update(
        &self,
        request: Request<pb::ConfigurationUpdateRequest>,
    ) -> Result<Response<Self::ConfigurationUpdateStream>, Status> {
        let ns = self.scope(&request, &request.get_ref().namespace)?;
        Ok(Response::new(follow(
            &self.caches.configurations,
            ns,
            |c| async move {
                pb::ConfigurationUpdateEvent {
                    configuration: encoded(&c).await,
                    r#type: event_type(c.change),
                }
            },
        )))
    }

    async fn resiliency_update(
        &self,
        request: Request<pb::ResiliencyUpdateRequest>,
    ) -> Result<Response<Self::ResiliencyUpdateStream>, Status> {
        let ns = self.scope(&request, &request.get_ref().namespace)?;
        Ok(Response::new(follow(
            &self.caches.resiliencies,
            ns,
            |c| async move {
                pb::ResiliencyUpdateEvent {
                    resiliency: encoded(&c).await,
                    r#type: event_type(c.change),
                }
            },
        )))
    }
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
