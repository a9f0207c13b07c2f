//! The resources a sidecar starts from, whichever way they arrive: the standalone folders
//! (`--resources-path`), or the embedded default when none is given.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::lifecycle::{self, Sourced};
use crate::resources::{Component, HTTPEndpoint, Resiliency, decode, load_resources};
use crate::subscriptions::Declared;

/// Everything the standalone folders hold that the runtime uses.
pub struct Documents {
    pub components: Vec<Sourced>,
    pub resiliencies: Vec<Resiliency>,
    pub http_endpoints: Vec<HTTPEndpoint>,
    pub subscriptions: Vec<Declared>,
}

/// Reads the folders; bad documents are logged with their file and skipped, as Dapr does,
/// but two components of one name are an error.
pub fn read(dirs: &[PathBuf]) -> Result<Documents> {
    let resources = load_resources(dirs)?;
    for problem in &resources.problems {
        tracing::warn!("skipping resource: {problem}");
    }
    let components: Vec<Sourced> = resources
        .components
        .into_iter()
        .zip(resources.component_sources)
        .map(|(component, source)| Sourced { component, source })
        .collect();
    lifecycle::check_unique(&components)?;
    Ok(Documents {
        components,
        resiliencies: resources.resiliencies,
        http_endpoints: resources.http_endpoints,
        subscriptions: resources.subscriptions,
    })
}

/// The components and subscriptions of the folders, for hot reload.
pub fn from_folders(dirs: &[PathBuf]) -> Result<(Vec<Sourced>, Vec<Declared>)> {
    let docs = read(dirs)?;
    Ok((docs.components, docs.subscriptions))
}

/// A sidecar started without resource folders gets an in-memory state store called
/// `statestore`, so that state works out of the box.
pub fn embedded_default() -> Result<Documents> {
    let doc = serde_json::json!({
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "statestore"},
        "spec": {"type": "state.in-memory", "version": "v1"},
    });
    let component: Component = decode(doc).context("the embedded default component")?;
    let broker = serde_json::json!({
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "pubsub"},
        "spec": {"type": "pubsub.in-memory", "version": "v1"},
    });
    let broker: Component = decode(broker).context("the embedded default pub/sub")?;
    tracing::info!(
        "no resources path given: using the embedded in-memory state store 'statestore' and pub/sub 'pubsub'"
    );
    Ok(Documents {
        components: vec![
            Sourced {
                component,
                source: "the embedded default".into(),
            },
            Sourced {
                component: broker,
                source: "the embedded default".into(),
            },
        ],
        resiliencies: Vec::new(),
        http_endpoints: Vec::new(),
        subscriptions: Vec::new(),
    })
}
