//! The sidecar runtime: typed configuration from flags and environment, the resource
//! loader, the component lifecycle, the servers, and starting and stopping the sidecar:
//! load resources, initialise components, open the API servers, report ready, and shut
//! down gracefully on SIGTERM or `POST /v1.0/shutdown`.
//!
//! This is the only crate that knows every other one: it wires the front doors (`api`),
//! the building blocks (`blocks`), the channels (`channel`) and the component backends
//! together. Nothing depends on it but the `daprd` binary and tests.

pub mod config;
pub mod logging;
pub mod resources;

mod documents;
mod h2c;
mod identity;
mod invocation;
mod kubernetes;
mod lifecycle;
mod servers;
mod subscriptions;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::sync::watch;

use crate::config::{DAPR_COMPAT_VERSION, Env, Flags, Mode};
use crate::resources::{Configuration, DaprResource, enabled_features, load_configuration};
use api::Api;
use blocks::health::Health;
use blocks::metadata::{AppConnection, AppHealth, MetadataBlock};
use blocks::state::StateBlock;
use components_core::Registry;
use documents::Documents;
use lifecycle::Lifecycle;
use metrics::Metrics;

pub use servers::Listening;

/// The Configuration feature that turns on reloading components when their files change.
const HOT_RELOAD: &str = "HotReload";

/// A sidecar that has finished starting: its bound addresses and the means to stop it.
pub struct Running {
    pub listening: Listening,
    api: Arc<Api>,
    servers: servers::Servers,
    grace: Duration,
    /// This sidecar's entry in name resolution, removed on shutdown.
    registration: Arc<dyn components_core::nameresolution::Resolver>,
    lifecycle: Arc<Lifecycle>,
}

fn load_config(flags: &Flags) -> Result<Configuration> {
    let Some(path) = flags.config.first() else {
        return Ok(Configuration::default());
    };
    if !path.exists() {
        tracing::warn!(path = %path.display(), "configuration file not found; using the default configuration");
        return Ok(Configuration::default());
    }
    load_configuration(path).with_context(|| format!("loading configuration {}", path.display()))
}

fn app_connection(flags: &Flags) -> Result<AppConnection> {
    Ok(AppConnection {
        port: flags.app_port()?.unwrap_or(0),
        protocol: flags.app_protocol.to_string(),
        channel_address: flags.app_channel_address.clone(),
        max_concurrency: u32::try_from(flags.app_max_concurrency).unwrap_or(0),
        health: flags.enable_app_health_check.then(|| AppHealth {
            check_path: flags.app_health_check_path.clone(),
            probe_interval: format!("{}s", flags.app_health_probe_interval.max(1)),
            probe_timeout: format!("{}ms", flags.app_health_probe_timeout.max(1)),
            threshold: u32::try_from(flags.app_health_threshold).unwrap_or(3),
        }),
    })
}

/// Starts everything `flags` and `env` describe, with the component backends in
/// `registry`, and returns once the sidecar is ready.
pub async fn start(
    flags: &Flags,
    env: &Env,
    registry: Registry,
    started: Instant,
) -> Result<Running> {
    flags.validate()?;
    for flag in flags.not_yet_honoured() {
        tracing::warn!("{flag} is accepted but not supported by this sidecar yet");
    }
    let namespace = env.namespace();
    let kubernetes = flags.mode == Mode::Kubernetes;
    let (config, docs, follower, mtls) = if kubernetes {
        // The identity comes first: the operator is reached over mTLS. Sentry takes the
        // trust domain from the pod's Configuration, so none is asked for.
        let mtls = identity::start(flags, env, "").await?;
        let from = kubernetes::load(flags, namespace, mtls.as_deref()).await?;
        let docs = Documents {
            components: from.components,
            resiliencies: from.resiliencies,
            http_endpoints: from.http_endpoints,
            subscriptions: from.subscriptions,
        };
        (from.config, docs, Some(from.follower), mtls)
    } else {
        let config = load_config(flags)?;
        let trust_domain = config
            .spec
            .access_control
            .as_ref()
            .map(|a| a.trust_domain.as_str())
            .filter(|t| !t.is_empty())
            .unwrap_or(crate::resources::DEFAULT_TRUST_DOMAIN);
        let mtls = identity::start(flags, env, trust_domain).await?;
        let dirs = flags.resource_dirs();
        let docs = if dirs.is_empty() {
            documents::embedded_default()?
        } else {
            documents::read(&dirs)?
        };
        (config, docs, None, mtls)
    };
    let resiliency: Vec<crds::ResiliencySpec> = docs
        .resiliencies
        .iter()
        .filter(|r| crds::is_app_scoped(&r.spec.scopes, &flags.app_id))
        // An invalid document is refused with its reason and the others still apply.
        .filter(
            |r| match resiliency::parse_resiliency(std::slice::from_ref(&r.spec.spec)) {
                Ok(_) => true,
                Err(e) => {
                    tracing::error!("Could not read resiliency policy {}: {e}", r.name());
                    false
                }
            },
        )
        .map(|r| {
            tracing::info!("Resiliency configuration loaded: {}", r.name());
            r.spec.spec.clone()
        })
        .collect();
    let http_endpoints: Vec<crate::resources::HTTPEndpoint> = docs
        .http_endpoints
        .into_iter()
        .filter(|e| crds::is_app_scoped(&e.spec.scopes, &flags.app_id))
        .collect();
    let metrics = flags.enable_metrics.then(|| {
        Arc::new(Metrics::new(
            &flags.app_id,
            crate::resources::metric_options(&config),
        ))
    });
    let tracer = trace::Tracer::start(crate::resources::trace_settings(
        &config,
        env,
        &flags.app_id,
    )?)?;
    let max_body_size = flags.max_body_bytes()?;
    // Components get policies of their own (and breakers of their own).
    let component_policies = Arc::new(
        resiliency::parse_resiliency(&resiliency)
            .map_err(|e| anyhow::anyhow!("invalid Resiliency: {e}"))?,
    );
    let policies = resiliency::parse_resiliency(&resiliency)
        .map_err(|e| anyhow::anyhow!("invalid Resiliency: {e}"))?;

    let registry = Arc::new(registry);
    let state = Arc::new(StateBlock::new(
        flags.app_id.clone(),
        env.namespace_var.clone(),
        HashMap::new(),
    ));
    let metadata = Arc::new(
        MetadataBlock::new(
            flags.app_id.clone(),
            DAPR_COMPAT_VERSION.to_string(),
            enabled_features(&config),
            Vec::new(),
            app_connection(flags)?,
        )
        .with_http_endpoints(
            http_endpoints
                .iter()
                .map(|e| e.name().to_string())
                .collect(),
        ),
    );
    let lifecycle = Arc::new(Lifecycle::new(
        registry.clone(),
        &flags.app_id,
        namespace,
        kubernetes,
        state.clone(),
        metadata.clone(),
    ));
    let docs_subscriptions = docs.subscriptions;
    lifecycle.pubsub().set_policies(component_policies.clone());
    let outbox = Arc::new(blocks::outbox::Outbox::new(
        lifecycle.pubsub(),
        &flags.app_id,
        env.namespace_var.as_deref().unwrap_or_default(),
    ));
    state.set_outbox(outbox.clone());
    lifecycle.load(docs.components).await?;
    outbox.start(state.clone()).await;
    if let Some(m) = &metrics {
        lifecycle
            .names()
            .await
            .iter()
            .for_each(|_| m.component_loaded());
    }

    let internal = invocation::bind_internal(flags).await?;
    let invocation = invocation::setup(invocation::Inputs {
        flags,
        env,
        registry: &registry,
        config: &config,
        internal_port: internal.local_addr()?.port(),
        max_body: max_body_size,
        policies,
        http_endpoints: &http_endpoints,
        mtls,
    })
    .await?;
    let subscriber = Arc::new(blocks::pubsub::subscriptions::Subscriber::new(
        lifecycle.pubsub(),
        invocation.app.clone(),
        &flags.app_id,
        !flags
            .disable_init_endpoints
            .iter()
            .any(|e| e.trim() == "subscribe"),
    ));
    lifecycle.set_subscriber(subscriber.clone());
    let inputs = Arc::new(blocks::bindings::inputs::Inputs::new(
        lifecycle.bindings(),
        state.clone(),
        invocation.app.clone(),
    ));
    lifecycle.set_inputs(inputs.clone());
    lifecycle.set_subscriptions(&docs_subscriptions).await;
    let (shutdown_tx, _) = watch::channel(false);
    let health = Arc::new(Health::with_app(invocation.app_health.clone()));
    let api = Arc::new(Api {
        state,
        pubsub: lifecycle.pubsub(),
        subscriber: subscriber.clone(),
        bindings: lifecycle.bindings(),
        inputs: inputs.clone(),
        invoke: invocation.block,
        metadata,
        health: health.clone(),
        api_token: env.api_token.clone(),
        app_api_token: env.app_api_token.clone(),
        max_body_size,
        read_buffer_size: flags.read_buffer_bytes()?,
        log_requests: flags.enable_api_logging,
        metrics,
        tracer,
        shutdown: shutdown_tx,
        forced_shutdown: Default::default(),
        allowed_origins: api::http::AllowedOrigins::parse(&flags.allowed_origins),
    });
    tracing::info!(
        "The request body size parameter is: {} bytes",
        api.max_body_size
    );
    let hot_reload = config
        .spec
        .features
        .iter()
        .find(|f| f.name == HOT_RELOAD)
        .and_then(|f| f.enabled);
    match follower {
        // As Dapr 1.18: operator updates are followed unless HotReload is switched off.
        Some(f) if hot_reload != Some(false) => {
            tokio::spawn(f.run(lifecycle.clone()));
        }
        Some(_) => tracing::info!("Hot reloading disabled"),
        None if hot_reload == Some(true) && !flags.resource_dirs().is_empty() => {
            tokio::spawn(lifecycle::watch::run(
                lifecycle.clone(),
                flags.resource_dirs(),
            ));
        }
        None => {}
    }
    let servers = servers::Servers::start(flags, api.clone(), internal).await?;
    health.set_outbound_ready();
    if let Some(port) = flags.app_port()? {
        tracing::info!(
            "application protocol: {}. waiting on port {port}",
            flags.app_protocol
        );
        channel::wait_for_port(&flags.app_channel_address, port).await;
        tracing::info!("application discovered on port {port}");
    }
    // Subscriptions deliver to the app from the moment it is there, as in Dapr.
    subscriber.start_app().await;
    inputs.start_app().await;
    health.set_ready(true);
    tracing::info!(
        "dapr initialized. Status: Running. Init Elapsed {}ms",
        started.elapsed().as_millis()
    );
    Ok(Running {
        listening: servers.listening.clone(),
        api,
        servers,
        grace: flags.graceful_shutdown(),
        registration: invocation.registration,
        lifecycle,
    })
}

impl Running {
    /// Resolves when a shutdown was requested through the API.
    pub async fn shutdown_requested(&self) {
        let mut rx = self.api.shutdown.subscribe();
        // An error means the sender is gone, which only happens on shutdown anyway.
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Whether the shutdown requested through the API is a forced one (exit at once, 1).
    pub fn shutdown_is_forced(&self) -> bool {
        self.api.shutdown_is_forced()
    }

    /// Stops accepting new work, lets in-flight calls finish within the grace period,
    /// then closes the servers.
    pub async fn stop(self) -> Result<()> {
        tracing::info!("Dapr shutting down");
        self.api.health.set_ready(false);
        self.registration.unregister().await;
        self.api.request_shutdown();
        let deadline = tokio::time::Instant::now() + self.grace;
        if tokio::time::timeout_at(deadline, self.servers.wait())
            .await
            .is_err()
        {
            bail!("API servers did not stop within {}s", self.grace.as_secs());
        }
        // Subscriptions and input bindings stop before their components close; messages
        // in flight finish.
        if tokio::time::timeout_at(deadline, self.api.inputs.stop_all())
            .await
            .is_err()
        {
            tracing::warn!("input bindings did not stop within the grace period");
        }
        if let Some(outbox) = self.api.state.outbox() {
            let _ = tokio::time::timeout_at(deadline, outbox.stop()).await;
        }
        if tokio::time::timeout_at(deadline, self.api.subscriber.stop_all())
            .await
            .is_err()
        {
            tracing::warn!("subscriptions did not stop within the grace period");
        }
        // Components close once nothing can call them any more, within what is left of
        // the grace period.
        if tokio::time::timeout_at(deadline, self.lifecycle.close_all())
            .await
            .is_err()
        {
            tracing::warn!("components did not close within the grace period");
        }
        // The spans of the last calls go out before the process does.
        if tokio::time::timeout_at(deadline, self.api.tracer.flush())
            .await
            .is_err()
        {
            tracing::warn!("spans were not all exported within the grace period");
        }
        tracing::info!("Dapr runtime stopped");
        Ok(())
    }
}
