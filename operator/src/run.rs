//! Wiring: the watches, the sidecar API, health and metrics on every replica; the
//! reconcilers and the validator only while this replica leads.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use control_plane::identity::{Identity, OwnIdentity};
use control_plane::{Supervisor, http, leader};
use kube::api::{Api, DynamicObject};
use proto::operator::v1::operator_server::OperatorServer;
use tokio::sync::watch;

use crate::api::{Caches, OperatorApi};
use crate::cache::Cache;
use crate::kinds::{self, Kind};
use crate::services::ServiceMetrics;
use crate::{Flags, health, services, validate};

/// The Lease replicas of the operator elect their leader on, as Dapr's.
const LEASE_NAME: &str = "dapr-operator";

fn watch_kind(client: &kube::Client, flags: &Flags, kind: Kind) -> Arc<Cache> {
    let cache = Cache::new(kind);
    let resource = kind.api_resource();
    let api: Api<DynamicObject> = if flags.watch_namespace.is_empty() {
        Api::all_with(client.clone(), &resource)
    } else {
        Api::namespaced_with(client.clone(), &flags.watch_namespace, &resource)
    };
    tokio::spawn(cache.clone().run(api));
    cache
}

/// Runs the leader's work whenever this replica leads, and stops it when it no longer does.
async fn lead(
    mut leader: watch::Receiver<bool>,
    client: kube::Client,
    caches: Caches,
    metrics: Arc<ServiceMetrics>,
    identity: String,
    namespace: Option<String>,
) {
    loop {
        if *leader.borrow_and_update() {
            tracing::info!("leader: reconciling services and validating components");
            let work = async {
                tokio::join!(
                    services::run(client.clone(), namespace.clone(), metrics.clone()),
                    validate::run(client.clone(), caches.components.clone(), identity.clone()),
                )
            };
            let mut work = std::pin::pin!(work);
            tokio::select! {
                _ = &mut work => {}
                changed = leader.changed() => {
                    if changed.is_err() {
                        // Election is off (or gone): lead for good.
                        work.await;
                        return;
                    }
                    tracing::info!("lost leadership; stopping the reconcilers");
                }
            }
        } else if leader.changed().await.is_err() {
            return;
        }
    }
}

pub async fn run(flags: Flags) -> Result<()> {
    let client = control_plane::kubernetes::client(&flags.kubeconfig).await?;
    let identity = leader::replica_identity(std::env::var("POD_NAME").ok());
    let caches = Caches {
        components: watch_kind(&client, &flags, kinds::COMPONENT),
        configurations: watch_kind(&client, &flags, kinds::CONFIGURATION),
        subscriptions: watch_kind(&client, &flags, kinds::SUBSCRIPTION),
        resiliencies: watch_kind(&client, &flags, kinds::RESILIENCY),
        http_endpoints: watch_kind(&client, &flags, kinds::HTTP_ENDPOINT),
    };
    let metrics = Arc::new(ServiceMetrics::default());
    let mut supervisor = Supervisor::new();

    let leader = leader::Election {
        lease: LEASE_NAME,
        namespace: &flags.leader_election_namespace,
        identity: &identity,
        duration: Duration::from_secs(flags.leader_election_lease_duration),
        disabled: flags.disable_leader_election,
    }
    .start(client.clone())
    .await?;
    let work = lead(
        leader.clone(),
        client.clone(),
        caches.clone(),
        metrics.clone(),
        identity.clone(),
        Some(flags.watch_namespace.clone()).filter(|n| !n.is_empty()),
    );
    supervisor.spawn("leader's work", async move {
        work.await;
        Ok::<_, Infallible>(())
    });

    if flags.webhook_server_port != 0 {
        let listener = http::bind(
            &flags.webhook_server_listen_address,
            flags.webhook_server_port,
            "conversion webhook",
        )
        .await?;
        let webhook = crate::webhook::start(
            client.clone(),
            flags.leader_election_namespace.clone(),
            flags.webhook_url.clone(),
            listener,
        )
        .await
        .context("starting the conversion webhook")?;
        supervisor.spawn("conversion webhook", async move {
            webhook.await;
            Ok::<_, Infallible>(())
        });
    }

    let healthz = http::bind(&flags.healthz_listen_address, flags.healthz_port, "healthz").await?;
    supervisor.spawn(
        "healthz server",
        http::serve(
            healthz,
            health::healthz(caches.clone()),
            supervisor.shutdown(),
        ),
    );
    if flags.enable_metrics {
        let listener =
            http::bind(&flags.metrics_listen_address, flags.metrics_port, "metrics").await?;
        supervisor.spawn(
            "metrics server",
            http::serve(
                listener,
                health::metrics(metrics.clone(), leader.clone()),
                supervisor.shutdown(),
            ),
        );
    }

    let own = OwnIdentity {
        sentry_address: &flags.sentry_address,
        trust_anchors_file: &flags.trust_anchors_file,
        trust_domain: &flags.control_plane_trust_domain,
        namespace: &flags.leader_election_namespace,
        app_id: "dapr-operator",
    }
    .start()
    .await?;
    // Listen only once the identity is there: a sidecar that connects is served at once.
    let api = http::bind(&flags.api_listen_address, flags.port, "operator API").await?;
    let service = OperatorServer::new(OperatorApi::new(caches, client, own.is_some()));
    let shutdown = supervisor.shutdown();
    match own {
        Some(Identity { cell, roots }) => {
            tracing::info!(identity = %identity, "operator API listening on {} (mTLS as {})", api.local_addr()?, cell.id());
            let tls = security::server_config(cell, roots).context("operator TLS")?;
            let incoming = security::tls::accept_stream(api, tls);
            supervisor.spawn("operator API", serve_api(service, incoming, shutdown));
        }
        None => {
            tracing::info!(identity = %identity, "operator API listening on {}", api.local_addr()?);
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(api);
            supervisor.spawn("operator API", serve_api(service, incoming, shutdown));
        }
    }
    supervisor.run().await?;
    tracing::info!("operator stopped");
    Ok(())
}

/// Serves the sidecars' API on `incoming` (plain TCP or mTLS) until shutdown.
async fn serve_api<I, IO, IE>(
    service: OperatorServer<OperatorApi>,
    incoming: I,
    shutdown: control_plane::Shutdown,
) -> Result<(), tonic::transport::Error>
where
    I: tokio_stream::Stream<Item = Result<IO, IE>>,
    IO: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + tonic::transport::server::Connected
        + Unpin
        + Send
        + 'static,
    IO::ConnectInfo: Clone + Send + Sync + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown.wait())
        .await
}
