//! Wiring: the watches, the sidecar API, health and metrics on every replica; the
//! reconcilers and the validator only while this replica leads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use kube::api::{Api, DynamicObject};
use proto::operator::v1::operator_server::OperatorServer;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{Caches, OperatorApi};
use crate::cache::Cache;
use crate::kinds::{self, Kind};
use crate::services::ServiceMetrics;
use crate::{Flags, health, leader, services, validate};

async fn client(flags: &Flags) -> Result<kube::Client> {
    let config = if flags.kubeconfig.is_empty() {
        kube::Config::infer()
            .await
            .context("finding cluster configuration")?
    } else {
        let kubeconfig = kube::config::Kubeconfig::read_from(&flags.kubeconfig)
            .with_context(|| format!("reading kubeconfig {}", flags.kubeconfig))?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .context("loading kubeconfig")?
    };
    kube::Client::try_from(config).context("building the Kubernetes client")
}

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

async fn bind(address: &str, port: u16, what: &str) -> Result<TcpListener> {
    let addr: SocketAddr = format!("{}:{port}", Flags::listen(address))
        .parse()
        .with_context(|| format!("invalid {what} address {address:?}"))?;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr} ({what})"))
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
    let client = client(&flags).await?;
    let identity = std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let caches = Caches {
        components: watch_kind(&client, &flags, kinds::COMPONENT),
        configurations: watch_kind(&client, &flags, kinds::CONFIGURATION),
        subscriptions: watch_kind(&client, &flags, kinds::SUBSCRIPTION),
        resiliencies: watch_kind(&client, &flags, kinds::RESILIENCY),
        http_endpoints: watch_kind(&client, &flags, kinds::HTTP_ENDPOINT),
    };
    let metrics = Arc::new(ServiceMetrics::default());

    let leader = leader::elect(
        client.clone(),
        &flags.leader_election_namespace,
        &identity,
        Duration::from_secs(flags.leader_election_lease_duration),
        flags.disable_leader_election,
    )
    .await
    .context("starting leader election")?;
    tokio::spawn(lead(
        leader.clone(),
        client.clone(),
        caches.clone(),
        metrics.clone(),
        identity.clone(),
        Some(flags.watch_namespace.clone()).filter(|n| !n.is_empty()),
    ));

    if flags.webhook_server_port != 0 {
        let listener = bind(
            &flags.webhook_server_listen_address,
            flags.webhook_server_port,
            "conversion webhook",
        )
        .await?;
        crate::webhook::start(
            client.clone(),
            flags.leader_election_namespace.clone(),
            flags.webhook_url.clone(),
            listener,
        )
        .await
        .context("starting the conversion webhook")?;
    }

    let healthz = bind(&flags.healthz_listen_address, flags.healthz_port, "healthz").await?;
    let router = health::healthz(caches.clone());
    tokio::spawn(async move { axum::serve(healthz, router).await });
    if flags.enable_metrics {
        let listener = bind(&flags.metrics_listen_address, flags.metrics_port, "metrics").await?;
        let router = health::metrics(metrics.clone(), leader.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
    }

    let api = bind(&flags.api_listen_address, flags.port, "operator API").await?;
    let mut server = tonic::transport::Server::builder();
    match own_identity(&flags).await? {
        Some((cell, roots)) => {
            tracing::info!(identity = %identity, "operator API listening on {} (mTLS as {})", api.local_addr()?, cell.id());
            let tls = security::server_config(cell, roots).context("operator TLS")?;
            let incoming = security::tls::accept_stream(api, tls);
            server
                .add_service(OperatorServer::new(OperatorApi::new(caches, client, true)))
                .serve_with_incoming_shutdown(incoming, shutdown())
                .await
        }
        None => {
            tracing::info!(identity = %identity, "operator API listening on {}", api.local_addr()?);
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(api);
            server
                .add_service(OperatorServer::new(OperatorApi::new(caches, client, false)))
                .serve_with_incoming_shutdown(incoming, shutdown())
                .await
        }
    }
    .context("operator API server")?;
    tracing::info!("operator stopped");
    Ok(())
}

/// Where Dapr mounts the projected ServiceAccount token for Sentry.
const SENTRY_TOKEN_PATH: &str = "/var/run/secrets/dapr.io/sentrytoken/token";

/// The operator's own certificate from Sentry (`dapr-operator` in its namespace), when
/// `--sentry-address` is set.
async fn own_identity(
    flags: &Flags,
) -> Result<Option<(Arc<security::IdentityCell>, Arc<rustls::RootCertStore>)>> {
    if flags.sentry_address.is_empty() {
        return Ok(None);
    }
    let anchors = std::fs::read_to_string(&flags.trust_anchors_file).with_context(|| {
        format!(
            "reading --trust-anchors-file {:?}",
            flags.trust_anchors_file
        )
    })?;
    let roots = security::sentry_client::root_store(&anchors)?;
    let token = std::fs::read_to_string(SENTRY_TOKEN_PATH).unwrap_or_default();
    let namespace = flags.leader_election_namespace.clone();
    let cell = security::SentryClient {
        address: flags.sentry_address.clone(),
        roots: roots.clone(),
        sentry_id: security::SpiffeId::new(
            &flags.control_plane_trust_domain,
            &namespace,
            "dapr-sentry",
        ),
        app_id: "dapr-operator".into(),
        namespace,
        trust_domain: flags.control_plane_trust_domain.clone(),
        kubernetes: !token.trim().is_empty(),
        token: token.trim().to_string(),
    }
    .start(Duration::from_secs(30))
    .await
    .context("getting the operator's certificate from Sentry")?;
    Ok(Some((cell, roots)))
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
