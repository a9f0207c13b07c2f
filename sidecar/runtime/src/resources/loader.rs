use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

use super::{Component, Configuration, DocumentError, HTTPEndpoint, Resiliency, decode};

/// Why a resource file, or one document in it, was not loaded. The messages end with the
/// parser's reason, so that reason is a field rather than the `source`: a chain of errors
/// would otherwise print it twice.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid YAML: {reason}")]
    Yaml {
        path: PathBuf,
        /// Boxed: the parser's error is large, and every `Result` here carries its size.
        reason: Box<serde_saphyr::Error>,
    },
    #[error("{path}: document {index} ({kind}): {reason}")]
    Document {
        path: PathBuf,
        index: usize,
        kind: String,
        reason: DocumentError,
    },
    #[error("{path}: no Configuration document found")]
    NoConfiguration { path: PathBuf },
}

/// What the resource folders hold. Bad documents do not stop loading: each one is
/// reported with its file and reason in `problems`, as Dapr logs and skips them.
#[derive(Debug, Default)]
pub struct Loaded {
    pub components: Vec<Component>,
    /// Where each of `components` came from (`file (document N)`), in the same order.
    pub component_sources: Vec<String>,
    /// `Resiliency` documents; the resiliency module turns their specs into policies.
    pub resiliencies: Vec<Resiliency>,
    pub http_endpoints: Vec<HTTPEndpoint>,
    /// `Subscription` documents of either version, in document order.
    pub subscriptions: Vec<crate::subscriptions::Declared>,
    pub problems: Vec<LoadError>,
}

fn yaml_documents(path: &Path) -> Result<Vec<Value>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&text).map_err(|reason| LoadError::Yaml {
            path: path.to_path_buf(),
            reason: Box::new(reason),
        })?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads every YAML document in each folder (multi-document files included) and keeps
/// the Components, Subscriptions, Resiliencies and HTTPEndpoints ([`decode`] says what each must satisfy).
/// Other kinds are left to the features that own them.
pub fn load_resources(dirs: &[PathBuf]) -> Result<Loaded, LoadError> {
    let mut loaded = Loaded::default();
    for dir in dirs {
        for path in yaml_files(dir)? {
            let docs = match yaml_documents(&path) {
                Ok(docs) => docs,
                Err(e) => {
                    loaded.problems.push(e);
                    continue;
                }
            };
            for (index, doc) in docs.into_iter().enumerate() {
                let kind = doc
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let problem = |reason: DocumentError| LoadError::Document {
                    path: path.clone(),
                    index,
                    kind: kind.clone(),
                    reason,
                };
                match kind.as_str() {
                    "HTTPEndpoint" => match decode::<HTTPEndpoint>(doc) {
                        Ok(e) => loaded.http_endpoints.push(e),
                        Err(reason) => loaded.problems.push(problem(reason)),
                    },
                    "Subscription" => match crate::subscriptions::decode_doc(doc) {
                        Ok(s) => loaded.subscriptions.push(s),
                        Err(reason) => loaded.problems.push(problem(reason)),
                    },
                    "Resiliency" => match decode::<Resiliency>(doc) {
                        Ok(r) => loaded.resiliencies.push(r),
                        Err(reason) => loaded.problems.push(problem(reason)),
                    },
                    "Component" => match decode::<Component>(doc) {
                        Ok(c) => {
                            loaded.components.push(c);
                            loaded
                                .component_sources
                                .push(format!("{} (document {index})", path.display()));
                        }
                        Err(reason) => loaded.problems.push(problem(reason)),
                    },
                    // Other kinds belong to features that read them themselves.
                    _ => {}
                }
            }
        }
    }
    Ok(loaded)
}

/// Reads the Configuration named by `--config`: a file, failing loudly since a
/// configuration the user asked for must not be silently ignored.
pub fn load_configuration(path: &Path) -> Result<Configuration, LoadError> {
    for (index, doc) in yaml_documents(path)?.into_iter().enumerate() {
        if doc.get("kind").and_then(Value::as_str) == Some("Configuration") {
            return decode(doc).map_err(|reason| LoadError::Document {
                path: path.to_path_buf(),
                index,
                kind: "Configuration".into(),
                reason,
            });
        }
    }
    Err(LoadError::NoConfiguration {
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::DaprResource;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).expect("write fixture");
    }

    #[test]
    fn loads_multi_document_files_and_reports_bad_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "a.yaml",
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: one\nspec:\n  type: state.in-memory\n  version: v1\n  metadata:\n  - name: port\n    value: 6379\n  - name: flag\n    value: true\nscopes: [app1]\n---\nkind: Subscription\nmetadata:\n  name: sub\nspec:\n  pubsubname: pubsub\n  topic: t\n  routes:\n    default: /t\n---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: two\nspec:\n  type: state.redis\n",
        );
        write(
            dir.path(),
            "broken.yaml",
            "kind: Component\nmetadata: [unclosed\n",
        );
        write(
            dir.path(),
            "noname.yml",
            "kind: Component\nmetadata: {}\nspec: {type: state.redis}\n",
        );
        write(
            dir.path(),
            "notype.yaml",
            "kind: Component\nmetadata: {name: x}\nspec: {version: v1}\n",
        );
        write(dir.path(), "ignored.txt", "not yaml at all: [");
        let loaded = load_resources(&[dir.path().to_path_buf()]).expect("folder readable");
        let names: Vec<_> = loaded.components.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["one", "two"]);
        assert_eq!(loaded.subscriptions.len(), 1);
        assert_eq!(loaded.subscriptions[0].name(), "sub");
        let one = &loaded.components[0];
        let values: Vec<_> = one
            .name_value_pairs()
            .iter()
            .map(|p| p.value_string())
            .collect();
        assert_eq!(values, [Some("6379".into()), Some("true".into())]);
        assert!(one.is_app_scoped("app1") && !one.is_app_scoped("app2"));
        assert!(loaded.components[1].is_app_scoped("anyone"));
        assert_eq!(loaded.problems.len(), 3, "{:?}", loaded.problems);
        let text: Vec<String> = loaded.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.contains("broken.yaml") && t.contains("invalid YAML"))
        );
        assert!(
            text.iter()
                .any(|t| t.contains("noname.yml") && t.contains("metadata.name"))
        );
        assert!(
            text.iter()
                .any(|t| t.contains("notype.yaml") && t.contains("type"))
        );
    }

    #[test]
    fn missing_folder_is_an_error() {
        assert!(load_resources(&[PathBuf::from("/nonexistent/dir")]).is_err());
    }

    #[test]
    fn reads_configuration_features() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "config.yaml",
            "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: cfg\nspec:\n  features:\n  - name: Foo\n    enabled: true\n  - name: Bar\n    enabled: false\n  tracing:\n    samplingRate: \"1\"\n",
        );
        let cfg = load_configuration(&dir.path().join("config.yaml")).expect("loads");
        assert_eq!(crate::resources::enabled_features(&cfg), ["Foo"]);
        assert_eq!(cfg.spec.tracing.expect("tracing").sampling_rate, "1");
        write(
            dir.path(),
            "nospec.yaml",
            "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: bare\n",
        );
        let bare = load_configuration(&dir.path().join("nospec.yaml")).expect("spec optional");
        assert_eq!(bare.name(), "bare");
        assert!(crate::resources::enabled_features(&bare).is_empty());
        write(
            dir.path(),
            "other.yaml",
            "kind: Component\nmetadata: {name: a}\n",
        );
        assert!(load_configuration(&dir.path().join("other.yaml")).is_err());
        assert!(load_configuration(&dir.path().join("missing.yaml")).is_err());
    }
}
