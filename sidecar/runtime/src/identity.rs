//! Obtaining this sidecar's workload identity under mTLS (`--enable-mtls`): a certificate from
//! Sentry (`--sentry-address`), trusted through `DAPR_TRUST_ANCHORS`, renewed at half its
//! life, and used on the internal gRPC port in both directions. Peers are checked by
//! their SPIFFE ID, `spiffe://<trust domain>/ns/<namespace>/<app id>`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use channel::mtls::Mtls;
use security::sentry_client::root_store;
use security::{SentryClient, SpiffeId};

use crate::config::{Env, Flags, Mode};

/// How long startup waits for Sentry.
const SENTRY_WAIT: Duration = Duration::from_secs(30);

/// Gets this sidecar's certificate when mTLS is on; `None` when it is off.
pub async fn start(flags: &Flags, env: &Env, trust_domain: &str) -> Result<Option<Arc<Mtls>>> {
    if !flags.enable_mtls {
        return Ok(None);
    }
    if flags.sentry_address.is_empty() {
        anyhow::bail!("--enable-mtls needs --sentry-address");
    }
    let roots = root_store(&env.trust_anchors).context("DAPR_TRUST_ANCHORS")?;
    // In Kubernetes the projected token proves who we are, and there is no going on
    // without it: no INSECURE fallback. Standalone, no token is INSECURE.
    let token = security::sentry_token::find_dapr(flags.mode == Mode::Kubernetes)
        .context("refusing to start without a certificate under mTLS")?;
    let client = SentryClient {
        address: flags.sentry_address.clone(),
        roots: roots.clone(),
        sentry_id: SpiffeId::new(
            &flags.control_plane_trust_domain,
            &flags.control_plane_namespace,
            "dapr-sentry",
        ),
        app_id: flags.app_id.clone(),
        namespace: env.namespace().to_string(),
        trust_domain: trust_domain.to_string(),
        token,
    };
    let identity = client
        .start(SENTRY_WAIT)
        .await
        .context("getting this sidecar's certificate from Sentry")?;
    tracing::info!(id = %identity.id(), "mTLS is on");
    Ok(Some(Arc::new(Mtls { identity, roots })))
}
