//! Wiring: the trust bundle, the validators, the TLS listener and the CA service, plus
//! healthz and metrics.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use control_plane::{Supervisor, http};
use proto::sentry::v1::ca_server::CaServer;

use crate::Flags;
use crate::config::{SigningConfig, parse_duration};
use crate::server::{CaService, Counters, serving_tls};
use crate::trust::{self, Source};
use crate::validator::KubernetesValidator;

fn signing_config(flags: &Flags) -> Result<SigningConfig> {
    if flags.config.is_empty() {
        return Ok(SigningConfig::default());
    }
    match std::fs::read_to_string(&flags.config) {
        Ok(text) => SigningConfig::from_yaml(&text)
            .with_context(|| format!("reading configuration {}", flags.config)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!("configuration {} not found; using defaults", flags.config);
            Ok(SigningConfig::default())
        }
        Err(e) => Err(e).with_context(|| format!("reading configuration {}", flags.config)),
    }
}

/// In Kubernetes `--config` names a Configuration in Sentry's namespace (`daprsystem`
/// unless given), as Dapr's Sentry reads it; missing, the defaults hold.
async fn kubernetes_signing_config(client: &kube::Client, flags: &Flags) -> Result<SigningConfig> {
    let name = if flags.config.is_empty() {
        "daprsystem"
    } else {
        &flags.config
    };
    let resource = kube::api::ApiResource {
        group: "dapr.io".into(),
        version: "v1alpha1".into(),
        api_version: "dapr.io/v1alpha1".into(),
        kind: "Configuration".into(),
        plural: "configurations".into(),
    };
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(client.clone(), &flags.namespace, &resource);
    match api.get_opt(name).await {
        Ok(Some(found)) => {
            // JSON is YAML: one reader for the file and the object.
            let text = serde_json::to_string(&found.data).context("the Configuration")?;
            SigningConfig::from_yaml(&text)
                .with_context(|| format!("reading Configuration {name} in {}", flags.namespace))
        }
        Ok(None) => {
            tracing::warn!(
                "Configuration {name} not found in {}; using defaults",
                flags.namespace
            );
            Ok(SigningConfig::default())
        }
        Err(e) => Err(e).with_context(|| format!("reading Configuration {name}")),
    }
}

pub async fn run(flags: Flags) -> Result<()> {
    let poll = parse_duration(&flags.trust_bundle_poll_interval)
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_millis(100));
    let client = if flags.kubernetes() {
        Some(control_plane::kubernetes::client(&flags.kubeconfig).await?)
    } else {
        None
    };
    let signing = match &client {
        Some(c) => kubernetes_signing_config(c, &flags).await?,
        None => signing_config(&flags)?,
    };
    tracing::info!(
        "workload certificates live {:?}, {:?} of clock skew allowed",
        signing.workload_cert_ttl,
        signing.allowed_clock_skew
    );
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
    let mut supervisor = Supervisor::new();

    let healthz = http::bind(&flags.healthz_listen_address, flags.healthz_port, "healthz").await?;
    supervisor.spawn(
        "healthz server",
        http::serve(healthz, http::healthz(|| true), supervisor.shutdown()),
    );
    if flags.enable_metrics {
        let c = counters.clone();
        let render = move || {
            format!(
                "# HELP dapr_sentry_cert_sign_success_total Certificates signed.\n\
                 # TYPE dapr_sentry_cert_sign_success_total counter\n\
                 dapr_sentry_cert_sign_success_total {}\n\
                 # HELP dapr_sentry_cert_sign_failure_total Signing requests refused.\n\
                 # TYPE dapr_sentry_cert_sign_failure_total counter\n\
                 dapr_sentry_cert_sign_failure_total {}\n",
                c.signed.load(Ordering::Relaxed),
                c.refused.load(Ordering::Relaxed)
            )
        };
        let listener =
            http::bind(&flags.metrics_listen_address, flags.metrics_port, "metrics").await?;
        supervisor.spawn(
            "metrics server",
            http::serve(listener, http::metrics(render), supervisor.shutdown()),
        );
    }

    let ns = &flags.namespace;
    let dns = vec![
        "dapr-sentry".to_string(),
        format!("dapr-sentry.{ns}.svc"),
        format!("dapr-sentry.{ns}.svc.cluster.local"),
        "localhost".to_string(),
    ];
    let tls = serving_tls(trust.clone(), flags.sentry_spiffe_id(), dns)
        .await
        .context("issuing Sentry's own certificate")?;
    let listener = http::bind(&flags.listen_address, flags.port, "Sentry API").await?;
    tracing::info!(
        "Sentry listening on {} (trust domain {}, workload certificates live {:?})",
        listener.local_addr()?,
        flags.trust_domain,
        signing.workload_cert_ttl
    );
    let incoming = security::tls::accept_stream(listener, tls);
    let service = CaServer::new(CaService::new(
        trust,
        signing,
        kubernetes,
        counters,
        flags.namespace.clone(),
    ));
    let shutdown = supervisor.shutdown();
    supervisor.spawn("Sentry API", async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, shutdown.wait())
            .await
    });
    supervisor.run().await?;
    Ok(())
}
