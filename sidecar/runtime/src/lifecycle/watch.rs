//! Standalone hot reload (the `HotReload` feature): the `--resources-path` folders are
//! watched and, when their YAML changes, the components are made to match them.
//!
//! The folders are polled: reading a handful of small files twice a second costs nothing
//! measurable, sees every kind of change (an editor's rename-over, a `kubectl`-style
//! rewrite, a deleted file) and needs no platform notification API.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::Lifecycle;

/// How often the folders are looked at.
const POLL: Duration = Duration::from_millis(500);
/// A change is applied once the folders have stayed the same this long, so a file being
/// written is not read half-way (Dapr's watcher batches events for 200 ms).
const SETTLE: Duration = Duration::from_millis(200);

/// A digest of every YAML file's name and content in `dirs`.
fn fingerprint(dirs: &[PathBuf]) -> u64 {
    let mut hasher = DefaultHasher::new();
    for dir in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| is_yaml(p))
            .collect();
        files.sort();
        for file in files {
            file.hash(&mut hasher);
            std::fs::read(&file).unwrap_or_default().hash(&mut hasher);
        }
    }
    hasher.finish()
}

fn is_yaml(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// Watches `dirs` for as long as the sidecar runs.
pub async fn run(lifecycle: Arc<Lifecycle>, dirs: Vec<PathBuf>) {
    tracing::info!("Watching directories: {dirs:?}");
    let mut seen = fingerprint(&dirs);
    loop {
        tokio::time::sleep(POLL).await;
        let now = fingerprint(&dirs);
        if now == seen {
            continue;
        }
        // Let the writer finish.
        let mut settled = now;
        loop {
            tokio::time::sleep(SETTLE).await;
            let again = fingerprint(&dirs);
            if again == settled {
                break;
            }
            settled = again;
        }
        seen = settled;
        match crate::documents::from_folders(&dirs) {
            Ok((docs, subscriptions)) => {
                tracing::info!("resources changed; reloading components");
                lifecycle.reconcile(docs).await;
                lifecycle.set_subscriptions(&subscriptions).await;
            }
            Err(e) => {
                // Dapr stops the sidecar here; a half-edited folder should not take a
                // serving sidecar down, so the components stay as they are.
                tracing::error!("not reloading components: {e:#}");
            }
        }
    }
}
