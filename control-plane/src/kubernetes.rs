//! The Kubernetes client, from `--kubeconfig` when given, else the in-cluster
//! configuration (or `$KUBECONFIG`), as Dapr's control plane finds its cluster.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("finding the cluster configuration: {0}")]
    Infer(#[source] kube::config::InferConfigError),
    #[error("reading kubeconfig {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("loading kubeconfig {path}: {source}")]
    Load {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("building the Kubernetes client: {0}")]
    Build(#[source] kube::Error),
}

/// A client for the cluster named by `kubeconfig` (a path; empty means infer).
pub async fn client(kubeconfig: &str) -> Result<kube::Client, ClientError> {
    let config = if kubeconfig.is_empty() {
        kube::Config::infer().await.map_err(ClientError::Infer)?
    } else {
        let file = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|source| {
            ClientError::Read {
                path: kubeconfig.to_string(),
                source,
            }
        })?;
        kube::Config::from_custom_kubeconfig(file, &Default::default())
            .await
            .map_err(|source| ClientError::Load {
                path: kubeconfig.to_string(),
                source,
            })?
    };
    kube::Client::try_from(config).map_err(ClientError::Build)
}
