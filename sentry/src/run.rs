//! Wiring: the trust bundle, the validators, the TLS listener and the CA service, plus
//! healthz and metrics.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::routing::get;
use proto::sentry::v1::ca_server::CaServer;
use tokio::net::TcpListener;

use crate::Flags;
use crate::config::{SigningConfig, parse_duration};
use crate::server::{CaService, Counters, serving_tls};
use crate::trust::{self, Source};
use crate::validator::KubernetesValidator;

async fn kube_client(flags: &Flags) -> Result<kube::Client> {
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

fn signing_config(flags: &Flags) -> Result<SigningConfig> {
    if flags.config.is_empty() {
        return Ok(SigningConfig::default());
    }
    match std::fs::read_to_string(&flags.config) {
        Ok(text) => SigningConfig::from_yaml(&text)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("reading configuration {}", flags.config)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!("configuration {} not found; using defaults", flags.config);
            Ok(SigningConfig::default())
        }
        Err(e) => Err(e).with_context(|| format!("reading configuration {}", flags.config)),
    }
}

async fn serve_http(address: &str, port: u16, router: Router) -> Result<()> {
    let listener = TcpListener::bind((address, port))
        .await
        .with_context(|| format!("listening on {address}:{port}"))?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(())
}

pub async fn run(flags: Flags) -> Result<()> {
    let signing = signing_config(&flags)?;
    let poll = parse_duration(&flags.trust_bundle_poll_interval)
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_millis(100));
    let client = if flags.kubernetes() {
        Some(kube_client(&flags).await?)
    } else {
        None
    };
    let source = match &client {
        Some(c) => Source::Secret {
            client: c.clone(),
            namespace: flags.namespace.clone(),
        },
        None => {
            let dir = &flags.issuer_credentials;
            Source::Files {
                ca: dir.join(&flags.issuer_ca_filename),
                issuer_crt: dir.join(&flags.issuer_certificate_filename),
                issuer_key: dir.join(&flags.issuer_key_filename),
            }
        }
    };
    let trust = trust::start(source, &flags.trust_domain, poll)
        .await
        .context("loading the trust bundle")?;
    let kubernetes = client.map(|c| {
        KubernetesValidator::new(
            c,
            flags.sentry_spiffe_id(),
            flags.namespace.clone(),
            flags.trust_domain.clone(),
        )
    });
    let counters = Arc::new(Counters::default());

    serve_http(
        &flags.healthz_listen_address,
        flags.healthz_port,
        Router::new().route("/healthz", get(|| async { "ok" })),
    )
    .await?;
    if flags.enable_metrics {
        let c = counters.clone();
        let render = move || {
            let body = format!(
                "# HELP dapr_sentry_cert_sign_success_total Certificates signed.\n\
                 # TYPE dapr_sentry_cert_sign_success_total counter\n\
                 dapr_sentry_cert_sign_success_total {}\n\
                 # HELP dapr_sentry_cert_sign_failure_total Signing requests refused.\n\
                 # TYPE dapr_sentry_cert_sign_failure_total counter\n\
                 dapr_sentry_cert_sign_failure_total {}\n",
                c.signed.load(Ordering::Relaxed),
                c.refused.load(Ordering::Relaxed)
            );
            async move { body }
        };
        serve_http(
            &flags.metrics_listen_address,
            flags.metrics_port,
            Router::new()
                .route("/metrics", get(render.clone()))
                .route("/", get(render)),
        )
        .await?;
    }

    let ns = &flags.namespace;
    let dns = vec![
        "dapr-sentry".to_string(),
        format!("dapr-sentry.{ns}.svc"),
        format!("dapr-sentry.{ns}.svc.cluster.local"),
        "localhost".to_string(),
    ];
    let tls = serving_tls(trust.clone(), flags.sentry_spiffe_id(), dns)?;
    let listener = TcpListener::bind((flags.listen_address.as_str(), flags.port))
        .await
        .with_context(|| format!("listening on {}:{}", flags.listen_address, flags.port))?;
    tracing::info!(
        "Sentry listening on {} (trust domain {}, workload certificates live {:?})",
        listener.local_addr()?,
        flags.trust_domain,
        signing.workload_cert_ttl
    );
    let incoming = security::tls::accept_stream(listener, tls);
    tonic::transport::Server::builder()
        .add_service(CaServer::new(CaService::new(
            trust, signing, kubernetes, counters,
        )))
        .serve_with_incoming_shutdown(incoming, shutdown())
        .await
        .context("Sentry gRPC server")?;
    Ok(())
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
