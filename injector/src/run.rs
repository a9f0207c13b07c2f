//! The injector process: its flags, its certificate from Sentry (the API server reaches
//! it as `dapr-sidecar-injector.<namespace>.svc`), `/mutate` over TLS, and `/healthz`,
//! all under the control plane's supervisor.

use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use control_plane::http;
use control_plane::identity::OwnIdentity;
use control_plane::supervisor::Supervisor;

use crate::config;
use crate::server::{Injector, router};

/// Dapr's injector flags (single-dash forms accepted by the binary).
#[derive(Parser, Debug, Clone)]
#[command(name = "injector", about = "The Dapr sidecar injector", version = env!("CARGO_PKG_VERSION"))]
pub struct Flags {
    /// The webhook's port.
    #[arg(long, default_value_t = 4000)]
    pub port: u16,
    #[arg(long = "listen-address", default_value = "0.0.0.0")]
    pub listen_address: String,
    #[arg(long = "healthz-port", default_value_t = 8080)]
    pub healthz_port: u16,
    #[arg(long = "healthz-listen-address", default_value = "0.0.0.0")]
    pub healthz_listen_address: String,
    #[arg(long = "log-level", default_value = "info")]
    pub log_level: String,
    #[arg(long = "log-as-json", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub log_as_json: bool,
    /// The cluster, for keeping the webhook configuration's `caBundle`; empty: in-cluster
    /// when running in a Pod, else no upkeep.
    #[arg(long, default_value = "")]
    pub kubeconfig: String,
}

/// Runs until a signal or the first failure.
pub async fn run(flags: Flags) -> Result<()> {
    let mut cfg = config::from_env(|k| std::env::var(k).ok())?;
    cfg.settings.trust_anchors = std::fs::read_to_string(&cfg.trust_anchors_file)
        .with_context(|| format!("reading the trust anchors {}", cfg.trust_anchors_file))?;
    let own = OwnIdentity {
        sentry_address: &cfg.settings.sentry_address,
        trust_anchors_file: &cfg.trust_anchors_file,
        trust_domain: &cfg.settings.control_plane_trust_domain,
        namespace: &cfg.settings.control_plane_namespace,
        app_id: "dapr-injector",
    }
    .start()
    .await?
    .context("the injector needs a certificate from Sentry (DAPR_SENTRY_ADDRESS)")?;
    let mut tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(own.cell.clone());
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tls = Arc::new(tls);

    let mut supervisor = Supervisor::new();
    let healthz = http::bind(&flags.healthz_listen_address, flags.healthz_port, "healthz").await?;
    supervisor.spawn(
        "healthz server",
        http::serve(healthz, http::healthz(|| true), supervisor.shutdown()),
    );
    let listener = http::bind(&flags.listen_address, flags.port, "webhook").await?;
    tracing::info!(
        "sidecar injector listening on {} as {}",
        listener.local_addr()?,
        own.cell.id()
    );
    let anchors = cfg.settings.trust_anchors.clone();
    let namespace = cfg.settings.control_plane_namespace.clone();
    let settings = Arc::new(arc_swap::ArcSwap::from_pointee(cfg.settings));
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let client = if !flags.kubeconfig.is_empty() || in_cluster {
        Some(control_plane::kubernetes::client(&flags.kubeconfig).await?)
    } else {
        None
    };
    let app = router(Arc::new(Injector {
        settings: settings.clone(),
        requesters: cfg.requesters,
        client: client.clone(),
    }));
    supervisor.spawn("webhook", serve_tls(listener, tls, app));
    if let Some(client) = client {
        supervisor.spawn(
            "control-plane Configuration",
            crate::system_config::follow(
                client.clone(),
                namespace,
                settings,
                std::time::Duration::from_secs(5),
            ),
        );
        supervisor.spawn(
            "caBundle upkeep",
            crate::ca_bundle::keep(
                client,
                crate::ca_bundle::WEBHOOK_CONFIGURATION.to_string(),
                anchors.into_bytes(),
                std::time::Duration::from_secs(5),
            ),
        );
    } else {
        tracing::info!("no cluster: the webhook configuration's caBundle is left alone");
    }
    supervisor.run().await?;
    tracing::info!("injector stopped");
    Ok(())
}

/// Serves `app` over TLS, HTTP/1.1 or HTTP/2 as the API server chooses.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: axum::Router,
) -> Result<(), std::io::Error> {
    use futures::StreamExt;
    let mut incoming = security::tls::accept_stream(listener, tls);
    while let Some(conn) = incoming.next().await {
        let Ok(stream) = conn else { continue };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
        });
    }
    Ok(())
}
