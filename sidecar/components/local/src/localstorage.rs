//! `bindings.localstorage`: files under `rootPath` as an output binding (`create`, `get`,
//! `list`, `delete`), as Dapr's. File names are joined to the root so that no name, `..`
//! included, reaches outside it; a created file's data is unquoted and base64-decoded
//! when it is a quoted string or base64, as Dapr does.

use std::path::{Component as PathPart, Path, PathBuf};

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use components_core::bindings::{Binding, BindingError, InvokeRequest, InvokeResponse};
use components_core::{Component, ComponentError, Properties};

const DISALLOWED: [&str; 4] = ["/proc", "/sys", "/boot", "/var/run/secrets"];

pub struct LocalStorage {
    root: PathBuf,
}

fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            PathPart::ParentDir => {
                out.pop();
            }
            PathPart::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

impl LocalStorage {
    pub fn new(props: &Properties) -> Result<Self, ComponentError> {
        let raw = props.get("rootPath").ok_or_else(|| {
            ComponentError::Metadata("property rootPath must not be empty".into())
        })?;
        let mut root = PathBuf::from(raw);
        if !root.is_absolute() {
            let cwd = std::env::current_dir().map_err(|e| {
                ComponentError::Metadata(format!("failed to obtain current working directory: {e}"))
            })?;
            root = cwd.join(root);
        }
        let root = lexical(&root);
        if root.is_file() {
            return Err(ComponentError::Metadata(
                "property rootPath represents a file and not a directory".into(),
            ));
        }
        if DISALLOWED
            .iter()
            .any(|d| root == Path::new(d) || root.starts_with(d))
        {
            return Err(ComponentError::Metadata(
                "property rootPath points to a disallowed location".into(),
            ));
        }
        std::fs::create_dir_all(&root).map_err(|e| {
            ComponentError::Metadata(format!(
                "unable to create directory specified by 'rootPath' {}: {e}",
                root.display()
            ))
        })?;
        Ok(Self { root })
    }

    /// `name` under the root, never above it (`../x` is `x`).
    fn path_of(&self, name: &str) -> PathBuf {
        let mut out = self.root.clone();
        let mut depth = 0usize;
        for part in Path::new(name).components() {
            match part {
                PathPart::Normal(p) => {
                    out.push(p);
                    depth += 1;
                }
                PathPart::ParentDir if depth > 0 => {
                    out.pop();
                    depth -= 1;
                }
                _ => {}
            }
        }
        out
    }

    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .map(|p| p.display().to_string())
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| ".".into())
    }
}

fn backend(e: impl std::fmt::Display) -> BindingError {
    BindingError::Backend(e.to_string())
}

/// The bytes Dapr writes for a created file: unquoted, then base64-decoded, each when it
/// applies.
fn file_bytes(data: &[u8]) -> Vec<u8> {
    let mut bytes = data.to_vec();
    if bytes.first() == Some(&b'"')
        && let Ok(s) = serde_json::from_slice::<String>(&bytes)
    {
        bytes = s.into_bytes();
    }
    if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(&bytes) {
        bytes = decoded;
    }
    bytes
}

fn walk(dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p.display().to_string());
        }
    }
    Ok(())
}

#[async_trait]
impl Component for LocalStorage {}

#[async_trait]
impl Binding for LocalStorage {
    fn operations(&self) -> Vec<String> {
        ["create", "get", "list", "delete"]
            .map(String::from)
            .to_vec()
    }

    async fn invoke(&self, req: InvokeRequest) -> Result<InvokeResponse, BindingError> {
        let mut name = req.metadata.get("fileName").cloned().unwrap_or_default();
        if name.is_empty() && req.operation == "create" {
            name = uuid::Uuid::new_v4().to_string();
        }
        let path = self.path_of(&name);
        let data = match req.operation.as_str() {
            "create" => {
                if let Some(dir) = path.parent() {
                    tokio::fs::create_dir_all(dir).await.map_err(|e| {
                        backend(format!("error creating directory {}: {e}", dir.display()))
                    })?;
                }
                tokio::fs::write(&path, file_bytes(&req.data))
                    .await
                    .map_err(|e| backend(format!("error creating file {}: {e}", path.display())))?;
                serde_json::to_vec(&serde_json::json!({"fileName": self.relative(&path)}))
                    .map_err(backend)?
            }
            "get" => match tokio::fs::read(&path).await {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(backend(format!("file not found: {}", path.display())));
                }
                Err(e) => {
                    return Err(backend(format!(
                        "error opening path {}: {e}",
                        path.display()
                    )));
                }
            },
            "delete" => {
                tokio::fs::remove_file(&path)
                    .await
                    .map_err(|e| backend(format!("error deleting file {}: {e}", path.display())))?;
                Vec::new()
            }
            "list" => {
                if !path.is_dir() {
                    return Err(backend(format!(
                        "unable to list files as the file specified is not a directory: {}",
                        path.display()
                    )));
                }
                let mut files = Vec::new();
                walk(&path, &mut files).map_err(|e| {
                    backend(format!(
                        "error listing files in the directory {}: {e}",
                        path.display()
                    ))
                })?;
                serde_json::to_vec(&files).map_err(backend)?
            }
            other => {
                return Err(BindingError::BadRequest(format!(
                    "unsupported operation {other}"
                )));
            }
        };
        Ok(InvokeResponse {
            data: Bytes::from(data),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn storage(dir: &Path) -> LocalStorage {
        LocalStorage::new(&Properties::new([("rootPath", dir.display().to_string())])).unwrap()
    }

    fn req(op: &str, name: Option<&str>, data: &[u8]) -> InvokeRequest {
        InvokeRequest {
            operation: op.into(),
            data: Bytes::copy_from_slice(data),
            metadata: name
                .map(|n| HashMap::from([("fileName".to_string(), n.to_string())]))
                .unwrap_or_default(),
        }
    }

    #[tokio::test]
    async fn create_get_list_delete_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = storage(dir.path());
        let r = s
            .invoke(req("create", Some("a/b.txt"), br#""hello""#))
            .await
            .unwrap();
        assert_eq!(r.data, &br#"{"fileName":"a/b.txt"}"#[..]);
        assert_eq!(
            s.invoke(req("get", Some("a/b.txt"), b""))
                .await
                .unwrap()
                .data,
            &b"hello"[..]
        );
        let r = s.invoke(req("create", None, b"aGk=")).await.unwrap();
        let created: serde_json::Value = serde_json::from_slice(&r.data).unwrap();
        let name = created["fileName"].as_str().unwrap().to_string();
        assert_eq!(
            s.invoke(req("get", Some(&name), b"")).await.unwrap().data,
            &b"hi"[..],
            "base64 decoded"
        );
        let listed: Vec<String> =
            serde_json::from_slice(&s.invoke(req("list", None, b"")).await.unwrap().data).unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().any(|p| p.ends_with("a/b.txt")));
        s.invoke(req("delete", Some("a/b.txt"), b"")).await.unwrap();
        let e = s
            .invoke(req("get", Some("a/b.txt"), b""))
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("file not found"));
    }

    #[tokio::test]
    async fn names_cannot_leave_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let s = storage(&root);
        s.invoke(req("create", Some("../../escape"), b"x"))
            .await
            .unwrap();
        assert!(root.join("escape").exists());
        assert!(!dir.path().join("escape").exists());
        assert!(LocalStorage::new(&Properties::new([("rootPath", "/proc/x")])).is_err());
        assert!(LocalStorage::new(&Properties::new([("rootPath", "")])).is_err());
    }
}
