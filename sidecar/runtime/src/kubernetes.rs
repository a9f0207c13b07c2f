//! Kubernetes mode: the Configuration, Components, Resiliency policies, HTTPEndpoints and
//! Subscriptions come from the operator (`--control-plane-address`) for this sidecar's
//! namespace, and component changes are applied while the sidecar runs: added, changed or
//! deleted without a restart.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use proto::operator::v1 as pb;
use proto::operator::v1::operator_client::OperatorClient;
use tonic::transport::Channel;

use crate::config::Flags;
use crate::lifecycle::{Lifecycle, Sourced};
use crate::resources::{
    Component, Configuration, DaprResource, HTTPEndpoint, Resiliency, decode_json,
};
use crate::subscriptions::Declared;

/// How long startup waits for the operator to answer before giving up.
const CONNECT_FOR: Duration = Duration::from_secs(30);

/// What the sidecar starts with in Kubernetes mode, and the means to follow changes.
pub struct FromOperator {
    pub config: Configuration,
    pub components: Vec<Sourced>,
    pub resiliencies: Vec<Resiliency>,
    pub http_endpoints: Vec<HTTPEndpoint>,
    pub subscriptions: Vec<Declared>,
    pub follower: ComponentFollower,
}

/// Components from the operator, which names no file.
fn sourced(components: Vec<Component>) -> Vec<Sourced> {
    components
        .into_iter()
        .map(|component| Sourced {
            component,
            source: "the operator".into(),
        })
        .collect()
}

pub struct ComponentFollower {
    client: OperatorClient<Channel>,
    namespace: String,
    /// The update stream being opened. Dapr's operator sends the stream's response
    /// headers only with the first change, so nothing may wait for them but the follower.
    opening: Opening,
    /// The subscription stream being opened, and the subscriptions listed at start.
    subscriptions: Option<(
        SubscriptionsOpening,
        std::collections::BTreeMap<String, Declared>,
    )>,
}

type Updates = tonic::Streaming<pb::ComponentUpdateEvent>;
type Opening = tokio::task::JoinHandle<Result<Updates, tonic::Status>>;
type SubscriptionUpdates = tonic::Streaming<pb::SubscriptionUpdateEvent>;
type SubscriptionsOpening = tokio::task::JoinHandle<Result<SubscriptionUpdates, tonic::Status>>;

/// Asks for the subscription update stream in the background (as for components).
fn open_subscription_updates(
    client: &OperatorClient<Channel>,
    namespace: &str,
) -> SubscriptionsOpening {
    let mut client = client.clone();
    let request = pb::SubscriptionUpdateRequest {
        namespace: namespace.to_string(),
    };
    tokio::spawn(async move {
        client
            .subscription_update(request)
            .await
            .map(tonic::Response::into_inner)
    })
}

/// The namespace's subscriptions from the operator, by name.
async fn list_subscriptions(
    client: &mut OperatorClient<Channel>,
    namespace: &str,
) -> Result<std::collections::BTreeMap<String, Declared>> {
    Ok(client
        .list_subscriptions_v2(pb::ListSubscriptionsRequest {
            namespace: namespace.to_string(),
        })
        .await
        .context("listing subscriptions")?
        .into_inner()
        .subscriptions
        .iter()
        .filter_map(|bytes| match crate::subscriptions::decode_operator(bytes) {
            Ok(s) => Some((s.name().to_string(), s)),
            Err(e) => {
                tracing::warn!("skipping a subscription from the operator: {e}");
                None
            }
        })
        .collect())
}

/// Follows the operator's Subscription changes for as long as the sidecar runs, and
/// hands each new set to the lifecycle.
async fn follow_subscriptions(
    mut client: OperatorClient<Channel>,
    namespace: String,
    mut opening: SubscriptionsOpening,
    mut known: std::collections::BTreeMap<String, Declared>,
    lifecycle: Arc<Lifecycle>,
) {
    loop {
        match (&mut opening).await {
            Ok(Ok(mut updates)) => {
                while let Ok(Some(event)) = updates.message().await {
                    let s = match crate::subscriptions::decode_operator(&event.subscription) {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!("ignoring a malformed subscription update: {e}");
                            continue;
                        }
                    };
                    match pb::ResourceEventType::try_from(event.r#type) {
                        Ok(pb::ResourceEventType::Deleted) => {
                            known.remove(s.name());
                        }
                        _ => {
                            known.insert(s.name().to_string(), s);
                        }
                    }
                    let all: Vec<Declared> = known.values().cloned().collect();
                    lifecycle.set_subscriptions(&all).await;
                }
                tracing::warn!("the operator's subscription stream ended; reconnecting");
            }
            Ok(Err(status)) => {
                tracing::warn!("following subscriptions failed: {status}; reconnecting")
            }
            Err(e) => tracing::warn!("following subscriptions stopped: {e}; reconnecting"),
        }
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            opening = open_subscription_updates(&client, &namespace);
            match list_subscriptions(&mut client, &namespace).await {
                Ok(listed) => {
                    known = listed;
                    let all: Vec<Declared> = known.values().cloned().collect();
                    lifecycle.set_subscriptions(&all).await;
                    break;
                }
                Err(e) => {
                    opening.abort();
                    tracing::warn!("reconnecting to the operator: {e:#}");
                }
            }
        }
    }
}

/// Asks for the component update stream in the background.
fn open_updates(client: &OperatorClient<Channel>, namespace: &str) -> Opening {
    let mut client = client.clone();
    let request = pb::ComponentUpdateRequest {
        namespace: namespace.to_string(),
    };
    tokio::spawn(async move {
        client
            .component_update(request)
            .await
            .map(tonic::Response::into_inner)
    })
}

fn parse_all<T: DaprResource>(docs: &[Vec<u8>]) -> Vec<T> {
    docs.iter()
        .filter_map(|d| match decode_json(d) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!("skipping a {} from the operator: {e}", T::KIND);
                None
            }
        })
        .collect()
}

/// Under mTLS: waits until the operator's port answers, then talks TLS with this
/// sidecar's certificate to a server that must be the control plane's `dapr-operator`.
async fn connect_mtls(
    flags: &Flags,
    mtls: &channel::mtls::Mtls,
) -> Result<OperatorClient<Channel>> {
    let address = flags.control_plane_address.trim_start_matches("http://");
    let deadline = tokio::time::Instant::now() + CONNECT_FOR;
    while let Err(e) = tokio::net::TcpStream::connect(address).await {
        if tokio::time::Instant::now() >= deadline {
            return Err(e).with_context(|| format!("connecting to the operator at {address}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let operator = security::SpiffeId::new(
        &flags.control_plane_trust_domain,
        &flags.control_plane_namespace,
        "dapr-operator",
    );
    let config =
        security::client_config(Some(mtls.identity.clone()), mtls.roots.clone(), move |id| {
            *id == operator
        });
    let channel = security::channel_with_tls(address, config).map_err(anyhow::Error::msg)?;
    Ok(OperatorClient::new(channel))
}

async fn connect(address: &str) -> Result<OperatorClient<Channel>> {
    let url = if address.contains("://") {
        address.to_string()
    } else {
        format!("http://{address}")
    };
    let endpoint = Channel::from_shared(url.clone())
        .with_context(|| format!("invalid --control-plane-address {address:?}"))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true);
    let deadline = tokio::time::Instant::now() + CONNECT_FOR;
    loop {
        match endpoint.connect().await {
            Ok(channel) => return Ok(OperatorClient::new(channel)),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!("operator at {url} not reachable yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("connecting to the operator at {url}"));
            }
        }
    }
}

/// Loads everything this sidecar's `namespace` holds for it from the operator.
pub async fn load(
    flags: &Flags,
    namespace: &str,
    mtls: Option<&channel::mtls::Mtls>,
) -> Result<FromOperator> {
    if flags.control_plane_address.is_empty() {
        anyhow::bail!("--control-plane-address is required in Kubernetes mode");
    }
    let namespace = namespace.to_string();
    let mut client = match mtls {
        Some(m) => connect_mtls(flags, m).await?,
        None => connect(&flags.control_plane_address).await?,
    };

    let config = match flags.config.first().map(|p| p.display().to_string()) {
        None => Configuration::default(),
        Some(name) => {
            let r = client
                .get_configuration(pb::GetConfigurationRequest {
                    name: name.clone(),
                    namespace: namespace.clone(),
                })
                .await;
            match r {
                Ok(r) => decode_json(&r.into_inner().configuration)
                    .with_context(|| format!("Configuration {name} from the operator"))?,
                Err(s) if s.code() == tonic::Code::NotFound => {
                    tracing::warn!(
                        "Configuration {name} not found; using the default configuration"
                    );
                    Configuration::default()
                }
                Err(s) => return Err(s).context("getting the Configuration from the operator"),
            }
        }
    };

    // Ask to follow first, then list, so no change falls between the two; but never
    // wait for the stream to answer (see `ComponentFollower::opening`).
    let opening = open_updates(&client, &namespace);
    let listed = client
        .list_components(pb::ListComponentsRequest {
            namespace: namespace.clone(),
        })
        .await
        .context("listing components")?
        .into_inner()
        .components;
    let components: Vec<Component> = parse_all(&listed);
    let resiliencies: Vec<Resiliency> = parse_all(
        &client
            .list_resiliency(pb::ListResiliencyRequest {
                namespace: namespace.clone(),
            })
            .await
            .context("listing resiliency policies")?
            .into_inner()
            .resiliencies,
    );
    let endpoints: Vec<HTTPEndpoint> = parse_all(
        &client
            .list_http_endpoints(pb::ListHttpEndpointsRequest {
                namespace: namespace.clone(),
            })
            .await
            .context("listing HTTP endpoints")?
            .into_inner()
            .http_endpoints,
    );
    let subscriptions_opening = open_subscription_updates(&client, &namespace);
    let known = list_subscriptions(&mut client, &namespace).await?;
    let subscriptions: Vec<Declared> = known.values().cloned().collect();
    tracing::info!(
        namespace = %namespace,
        "loaded {} component(s), {} resiliency polic(ies), {} HTTP endpoint(s) from the operator",
        components.len(),
        resiliencies.len(),
        endpoints.len()
    );
    Ok(FromOperator {
        config,
        components: sourced(components),
        resiliencies,
        http_endpoints: endpoints,
        subscriptions,
        follower: ComponentFollower {
            client,
            namespace,
            opening,
            subscriptions: Some((subscriptions_opening, known)),
        },
    })
}

impl ComponentFollower {
    async fn handle(&mut self, lifecycle: &Lifecycle, event: pb::ComponentUpdateEvent) {
        let c: Component = match decode_json(&event.component) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("ignoring a malformed component update: {e}");
                return;
            }
        };
        match pb::ResourceEventType::try_from(event.r#type) {
            Ok(pb::ResourceEventType::Deleted) => lifecycle.remove(c.name()).await,
            // An unchanged component is left alone by the lifecycle.
            _ => lifecycle.apply(sourced(vec![c]).remove(0)).await,
        }
    }

    /// After a broken stream: follow again, list again, and make the loaded set match.
    async fn resync(&mut self, lifecycle: &Lifecycle) -> Result<()> {
        self.opening.abort();
        self.opening = open_updates(&self.client, &self.namespace);
        let listed = self
            .client
            .list_components(pb::ListComponentsRequest {
                namespace: self.namespace.clone(),
            })
            .await?
            .into_inner()
            .components;
        let listed: Vec<Component> = parse_all(&listed);
        lifecycle.reconcile(sourced(listed)).await;
        Ok(())
    }

    /// Applies component changes for as long as the sidecar runs.
    pub async fn run(mut self, lifecycle: Arc<Lifecycle>) {
        if let Some((opening, known)) = self.subscriptions.take() {
            tokio::spawn(follow_subscriptions(
                self.client.clone(),
                self.namespace.clone(),
                opening,
                known,
                lifecycle.clone(),
            ));
        }
        loop {
            match (&mut self.opening).await {
                Ok(Ok(mut updates)) => {
                    while let Ok(Some(event)) = updates.message().await {
                        self.handle(&lifecycle, event).await;
                    }
                    tracing::warn!("the operator's component stream ended; reconnecting");
                }
                Ok(Err(status)) => {
                    tracing::warn!("following components failed: {status}; reconnecting");
                }
                Err(e) => tracing::warn!("following components stopped: {e}; reconnecting"),
            }
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                match self.resync(&lifecycle).await {
                    Ok(()) => break,
                    Err(e) => tracing::warn!("reconnecting to the operator: {e:#}"),
                }
            }
        }
    }
}
