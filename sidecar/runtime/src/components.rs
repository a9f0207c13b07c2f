//! Turning loaded Component documents into live components, as Dapr does at startup:
//! scopes filter, metadata is resolved, each init has a timeout, and a failure stops
//! startup unless the component says `ignoreErrors: true`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::config::Flags;
use crate::registry::create_state_store;
use crate::resources::{Component, DaprResource, HTTPEndpoint, Resiliency, load_resources};
use blocks::metadata::ComponentInfo;
use blocks::state::{StateBlock, StoreEntry};
use components_core::Properties;
use components_core::properties::parse_duration;
use components_core::state::StateStore;
use components_memory::MemoryStore;

/// Dapr's default `initTimeout`.
const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Dapr component categories other than state; recognised, but not built yet.
const LATER_CATEGORIES: &[&str] = &[
    "bindings",
    "pubsub",
    "secretstores",
    "workflow",
    "workflowbackend",
    "middleware",
    "configuration",
    "crypto",
    "lock",
    "nameresolution",
    "conversation",
];

pub struct Loaded {
    pub stores: HashMap<String, StoreEntry>,
    pub infos: Vec<ComponentInfo>,
    /// The `spec` of every Resiliency resource in scope for this app.
    pub resiliency: Vec<crds::ResiliencySpec>,
    /// HTTPEndpoint resources in scope for this app.
    pub http_endpoints: Vec<HTTPEndpoint>,
}

/// Environment variables a component may not read through `envRef`, as in Dapr.
fn env_ref_allowed(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(' ')
        && name != "APP_API_TOKEN"
        && !name.to_ascii_uppercase().starts_with("DAPR_")
}

/// Whether the operator resolved this component's `secretKeyRef`s (Kubernetes mode with
/// the Kubernetes secret store, the default): it sends each value base64-encoded.
fn operator_resolved_secrets(c: &Component, kubernetes: bool) -> bool {
    kubernetes && matches!(c.spec.auth.secret_store.as_str(), "" | "kubernetes")
}

/// Resolves `spec.metadata`. `None` means the component must wait for a secret store
/// (Dapr parks it rather than failing).
fn resolve_metadata(c: &Component, kubernetes: bool) -> Option<Properties> {
    use base64::Engine;
    let items = c.name_value_pairs();
    let mut pairs = Vec::with_capacity(items.len());
    for item in items {
        if item.has_secret_key_ref() {
            if !operator_resolved_secrets(c, kubernetes) {
                return None;
            }
            let decoded = item
                .value_string()
                .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                .and_then(|b| String::from_utf8(b).ok())?;
            pairs.push((item.name.clone(), decoded));
            continue;
        }
        let value = match (item.value_string(), item.env_ref.as_str()) {
            (Some(v), _) => v,
            (None, "") => String::new(),
            (None, var) if env_ref_allowed(var) => std::env::var(var).unwrap_or_default(),
            (None, var) => {
                tracing::warn!(component = %c.name(), "envRef {var:?} is not allowed; value left empty");
                String::new()
            }
        };
        pairs.push((item.name.clone(), value));
    }
    Some(Properties::new(pairs))
}

fn log_name(c: &Component) -> String {
    let spec = &c.spec.spec;
    if spec.version.is_empty() {
        format!("{} ({})", c.name(), spec.type_)
    } else {
        format!("{} ({}/{})", c.name(), spec.type_, spec.version)
    }
}

async fn init_state_store(c: &Component, props: &Properties) -> Result<Arc<dyn StateStore>> {
    let spec = &c.spec.spec;
    let timeout = parse_duration(&spec.init_timeout)
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_INIT_TIMEOUT);
    let created = tokio::time::timeout(
        timeout,
        create_state_store(&spec.type_, &spec.version, props),
    )
    .await;
    match created {
        Err(_) => bail!("init timeout after {}s", timeout.as_secs_f64()),
        Ok(Err(e)) => bail!("{e}"),
        Ok(Ok(store)) => Ok(store),
    }
}

/// The embedded default for a sidecar started without resource folders.
fn embedded_default(app_id: &str) -> Loaded {
    let store: Arc<dyn StateStore> = MemoryStore::with_sweeper();
    let props = Properties::default();
    let prefix = StateBlock::prefix(&props, "statestore", app_id).unwrap_or(None);
    let info = ComponentInfo {
        name: "statestore".into(),
        kind: "state.in-memory".into(),
        version: "v1".into(),
        capabilities: store
            .features()
            .names()
            .into_iter()
            .map(String::from)
            .collect(),
    };
    tracing::info!(
        "no resources path given: using the embedded in-memory state store 'statestore'"
    );
    Loaded {
        stores: HashMap::from([("statestore".to_string(), StoreEntry::new(store, prefix))]),
        infos: vec![info],
        resiliency: Vec::new(),
        http_endpoints: Vec::new(),
    }
}

/// A component turned into a live state store, or the reason it was left out.
pub enum Initialised {
    Store {
        entry: StoreEntry,
        info: ComponentInfo,
    },
    /// Out of scope, of a category not supported yet, waiting for a secret store, or
    /// failed with `ignoreErrors: true`; already logged.
    Skipped,
}

/// Initialises one component as Dapr does: scopes, metadata, prefix, init with a timeout.
/// An error is fatal for the component (and, at startup, for the sidecar).
pub async fn init_one(c: &Component, app_id: &str, kubernetes: bool) -> Result<Initialised> {
    if !c.is_app_scoped(app_id) {
        tracing::debug!(component = %c.name(), "not in scope for this app; skipped");
        return Ok(Initialised::Skipped);
    }
    let spec = &c.spec.spec;
    let category = spec.type_.split('.').next().unwrap_or("");
    if category != "state" {
        if LATER_CATEGORIES.contains(&category) {
            tracing::warn!(
                "component {} is of a type this sidecar does not support yet; skipped",
                log_name(c)
            );
            return Ok(Initialised::Skipped);
        }
        let err = format!("incorrect type {}", spec.type_);
        if spec.ignore_errors {
            tracing::warn!(
                "Ignoring error processing component: {}: {err}",
                log_name(c)
            );
            return Ok(Initialised::Skipped);
        }
        bail!("Error processing component {}: {err}", log_name(c));
    }
    let Some(props) = resolve_metadata(c, kubernetes) else {
        tracing::warn!(
            "Component {} references a secret store that isn't loaded: {:?}; it will not be initialised",
            c.name(),
            c.spec.auth.secret_store
        );
        return Ok(Initialised::Skipped);
    };
    let prefix = match StateBlock::prefix(&props, c.name(), app_id) {
        Ok(p) => p,
        Err(e) if spec.ignore_errors => {
            tracing::warn!("Ignoring error processing component: {}: {e}", log_name(c));
            return Ok(Initialised::Skipped);
        }
        Err(e) => bail!("Error processing component {}: {e}", log_name(c)),
    };
    match init_state_store(c, &props).await {
        Ok(store) => {
            let info = ComponentInfo {
                name: c.name().to_string(),
                kind: spec.type_.clone(),
                version: if spec.version.is_empty() {
                    "v1".into()
                } else {
                    spec.version.clone()
                },
                capabilities: store
                    .features()
                    .names()
                    .into_iter()
                    .map(String::from)
                    .collect(),
            };
            tracing::info!("Component loaded: {}", log_name(c));
            Ok(Initialised::Store {
                entry: StoreEntry::new(store, prefix),
                info,
            })
        }
        Err(e) if spec.ignore_errors => {
            tracing::warn!("Ignoring error processing component: {}: {e}", log_name(c));
            Ok(Initialised::Skipped)
        }
        Err(e) => bail!(
            "Error processing component, daprd will exit gracefully: initialization error occurred for {}: {e}",
            log_name(c)
        ),
    }
}

/// Builds the live components, resiliency and endpoints from loaded documents.
pub async fn build(
    app_id: &str,
    kubernetes: bool,
    components: &[Component],
    resiliencies: &[Resiliency],
    http_endpoints: &[HTTPEndpoint],
) -> Result<Loaded> {
    let mut loaded = Loaded {
        stores: HashMap::new(),
        infos: Vec::new(),
        resiliency: Vec::new(),
        http_endpoints: http_endpoints
            .iter()
            .filter(|e| crds::is_app_scoped(&e.spec.scopes, app_id))
            .cloned()
            .collect(),
    };
    for r in resiliencies
        .iter()
        .filter(|r| crds::is_app_scoped(&r.spec.scopes, app_id))
    {
        tracing::info!("Resiliency configuration loaded: {}", r.name());
        loaded.resiliency.push(r.spec.spec.clone());
    }
    let mut seen = std::collections::HashSet::new();
    for c in components {
        if !seen.insert(c.name().to_string()) {
            bail!("duplicate definition of Component name {}", c.name());
        }
        if let Initialised::Store { entry, info } = init_one(c, app_id, kubernetes).await? {
            loaded.stores.insert(c.name().to_string(), entry);
            loaded.infos.push(info);
        }
    }
    Ok(loaded)
}

/// Standalone mode: the documents in `--resources-path`, or the embedded default.
pub async fn load(flags: &Flags) -> Result<Loaded> {
    let dirs = flags.resource_dirs();
    if dirs.is_empty() {
        return Ok(embedded_default(&flags.app_id));
    }
    let resources = load_resources(&dirs)?;
    for problem in &resources.problems {
        tracing::warn!("skipping resource: {problem}");
    }
    build(
        &flags.app_id,
        false,
        &resources.components,
        &resources.resiliencies,
        &resources.http_endpoints,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_refs_cannot_read_dapr_secrets() {
        assert!(env_ref_allowed("REDIS_HOST"));
        for denied in ["", "DAPR_API_TOKEN", "dapr_x", "APP_API_TOKEN", "A B"] {
            assert!(!env_ref_allowed(denied), "{denied}");
        }
    }
}
