//! Where the root and issuer live, and keeping the loaded copy current: files in a folder
//! (standalone) or the `dapr-trust-bundle` Secret plus a public `dapr-trust-bundle`
//! ConfigMap (Kubernetes). A missing bundle is generated and stored; a changed one is
//! checked and swapped in without a restart. A broken change is refused and the running
//! bundle kept.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;

use crate::ca::{self, Authority, Credentials};

pub const BUNDLE_NAME: &str = "dapr-trust-bundle";

#[derive(Clone)]
pub enum Source {
    Files {
        ca: PathBuf,
        issuer_crt: PathBuf,
        issuer_key: PathBuf,
    },
    Secret {
        client: kube::Client,
        namespace: String,
    },
}

/// The bundle Sentry signs with now; `generation` ticks on every swap.
pub struct Trust {
    current: ArcSwap<Authority>,
    generation: watch::Sender<u64>,
}

impl Trust {
    pub fn current(&self) -> Arc<Authority> {
        self.current.load_full()
    }

    pub fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn swap(&self, authority: Authority) {
        self.current.store(Arc::new(authority));
        self.generation.send_modify(|g| *g += 1);
    }
}

impl Source {
    async fn read(&self) -> anyhow::Result<Option<Credentials>> {
        match self {
            Source::Files {
                ca,
                issuer_crt,
                issuer_key,
            } => {
                let read = |p: &PathBuf| std::fs::read_to_string(p);
                match (read(ca), read(issuer_crt), read(issuer_key)) {
                    (Ok(ca_crt), Ok(issuer_crt), Ok(issuer_key)) => Ok(Some(Credentials {
                        ca_crt,
                        issuer_crt,
                        issuer_key,
                    })),
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e))
                        if e.kind() == std::io::ErrorKind::NotFound =>
                    {
                        Ok(None)
                    }
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e.into()),
                }
            }
            Source::Secret { client, namespace } => {
                let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
                let Some(secret) = secrets.get_opt(BUNDLE_NAME).await? else {
                    return Ok(None);
                };
                let data = secret.data.unwrap_or_default();
                let text = |k: &str| {
                    data.get(k)
                        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                        .unwrap_or_default()
                };
                let c = Credentials {
                    ca_crt: text("ca.crt"),
                    issuer_crt: text("issuer.crt"),
                    issuer_key: text("issuer.key"),
                };
                if c.ca_crt.is_empty() && c.issuer_crt.is_empty() && c.issuer_key.is_empty() {
                    return Ok(None);
                }
                Ok(Some(c))
            }
        }
    }

    async fn store(&self, c: &Credentials) -> anyhow::Result<()> {
        match self {
            Source::Files {
                ca,
                issuer_crt,
                issuer_key,
            } => {
                for p in [ca, issuer_crt, issuer_key] {
                    if let Some(dir) = p.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                }
                std::fs::write(ca, &c.ca_crt)?;
                std::fs::write(issuer_crt, &c.issuer_crt)?;
                write_private(issuer_key, &c.issuer_key)?;
                Ok(())
            }
            Source::Secret { client, namespace } => {
                let meta = ObjectMeta {
                    name: Some(BUNDLE_NAME.into()),
                    namespace: Some(namespace.clone()),
                    labels: Some(BTreeMap::from([(
                        "app.kubernetes.io/part-of".into(),
                        "dapr".into(),
                    )])),
                    ..Default::default()
                };
                let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
                let secret = Secret {
                    metadata: meta.clone(),
                    data: Some(BTreeMap::from([
                        ("ca.crt".into(), bytes(&c.ca_crt)),
                        ("issuer.crt".into(), bytes(&c.issuer_crt)),
                        ("issuer.key".into(), bytes(&c.issuer_key)),
                    ])),
                    ..Default::default()
                };
                let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
                match secrets.get_opt(BUNDLE_NAME).await? {
                    None => {
                        secrets.create(&PostParams::default(), &secret).await?;
                    }
                    // The chart installs the Secret empty, as Dapr's does: fill it in,
                    // conditional on the version read, so two replicas cannot both win.
                    Some(existing) => {
                        let filled = Secret {
                            data: secret.data,
                            ..existing
                        };
                        secrets
                            .replace(BUNDLE_NAME, &PostParams::default(), &filled)
                            .await?;
                    }
                }
                self.publish_config_map(client, namespace, &c.ca_crt, meta)
                    .await
            }
        }
    }

    /// The public half, for anyone who must trust workload certificates.
    async fn publish_config_map(
        &self,
        client: &kube::Client,
        namespace: &str,
        ca_crt: &str,
        meta: ObjectMeta,
    ) -> anyhow::Result<()> {
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let cm = ConfigMap {
            metadata: meta,
            data: Some(BTreeMap::from([("ca.crt".into(), ca_crt.to_string())])),
            ..Default::default()
        };
        match maps.get_opt(BUNDLE_NAME).await? {
            None => {
                maps.create(&PostParams::default(), &cm).await?;
            }
            Some(existing) => {
                let same = existing
                    .data
                    .as_ref()
                    .and_then(|d| d.get("ca.crt"))
                    .is_some_and(|v| v == ca_crt);
                if !same {
                    maps.replace(BUNDLE_NAME, &PostParams::default(), &cm)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(unix)]
fn write_private(path: &PathBuf, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &PathBuf, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

fn is_conflict(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<kube::Error>(), Some(kube::Error::Api(r)) if r.code == 409)
}

/// Loads the bundle, generating and storing one when there is none, then keeps it current.
pub async fn start(
    source: Source,
    trust_domain: &str,
    poll: Duration,
) -> anyhow::Result<Arc<Trust>> {
    let credentials = match source.read().await? {
        Some(c) => c,
        None => {
            tracing::info!("no trust bundle found; generating a root and an issuer");
            let c = ca::generate(trust_domain)?;
            match source.store(&c).await {
                Ok(()) => c,
                // Another replica stored its bundle between our read and our write.
                Err(e) if is_conflict(&e) => source
                    .read()
                    .await?
                    .context("the trust bundle vanished after a conflicting write")?,
                Err(e) => return Err(e),
            }
        }
    };
    let authority = Authority::load(credentials)?;
    if let Source::Secret { client, namespace } = &source {
        // Keep the public ConfigMap in step with a Secret that was made by someone else.
        let meta = ObjectMeta {
            name: Some(BUNDLE_NAME.into()),
            namespace: Some(namespace.clone()),
            ..Default::default()
        };
        source
            .publish_config_map(client, namespace, &authority.credentials().ca_crt, meta)
            .await?;
    }
    let trust = Arc::new(Trust {
        current: ArcSwap::from_pointee(authority),
        generation: watch::channel(0).0,
    });
    tokio::spawn(follow(source, trust.clone(), poll));
    Ok(trust)
}

async fn follow(source: Source, trust: Arc<Trust>, poll: Duration) {
    loop {
        tokio::time::sleep(poll).await;
        let read = match source.read().await {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("reading the trust bundle: {e:#}");
                continue;
            }
        };
        if &read == trust.current().credentials() {
            continue;
        }
        match Authority::load(read) {
            Ok(a) => {
                trust.swap(a);
                tracing::info!("trust bundle changed; now signing with the new issuer");
            }
            Err(e) => {
                tracing::error!("refusing the changed trust bundle, keeping the current one: {e}")
            }
        }
    }
}
