//! Deciding whether a caller may have a certificate for the identity it asks for.
//! `INSECURE` (standalone) believes the request; `KUBERNETES` checks a projected
//! ServiceAccount token with TokenReview and then the Pod behind it.

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::ApiResource;
use thiserror::Error;

/// Dapr's default trust domain for apps without an `accessControl.trustDomain`.
pub use security::DEFAULT_TRUST_DOMAIN as DEFAULT_APP_TRUST_DOMAIN;
/// Control-plane services that ask for their own identities.
const CONTROL_PLANE: &[&str] = &[
    "dapr-operator",
    "dapr-placement",
    "dapr-injector",
    "dapr-scheduler",
    "dapr-sentry",
];

#[derive(Debug, Error)]
pub enum Refusal {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Denied(String),
    #[error("validating the caller: {0}")]
    Backend(String),
}

/// A request already checked for shape.
#[derive(Debug, Clone)]
pub struct Claim {
    pub id: String,
    pub namespace: String,
    pub trust_domain: String,
    pub token: String,
}

/// Who the certificate is for once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub trust_domain: String,
    pub namespace: String,
    pub id: String,
}

impl Identity {
    pub fn spiffe_id(&self) -> String {
        format!(
            "spiffe://{}/ns/{}/{}",
            self.trust_domain, self.namespace, self.id
        )
    }
}

/// A DNS-label-like name: what may appear in a SPIFFE path segment without ambiguity.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// Standalone: the request is believed, but still must name a sane identity.
pub fn insecure(claim: &Claim) -> Result<Identity, Refusal> {
    let trust_domain = if claim.trust_domain.is_empty() {
        DEFAULT_APP_TRUST_DOMAIN.to_string()
    } else {
        claim.trust_domain.clone()
    };
    if !valid_name(&trust_domain) {
        return Err(Refusal::BadRequest(format!(
            "invalid trust domain {trust_domain:?}"
        )));
    }
    Ok(Identity {
        trust_domain,
        namespace: claim.namespace.clone(),
        id: claim.id.clone(),
    })
}

pub struct KubernetesValidator {
    client: kube::Client,
    audiences: Vec<String>,
    control_plane_namespace: String,
    control_plane_trust_domain: String,
}

impl KubernetesValidator {
    pub fn new(
        client: kube::Client,
        sentry_spiffe_id: String,
        control_plane_namespace: String,
        control_plane_trust_domain: String,
    ) -> Self {
        Self {
            client,
            audiences: vec!["dapr.io/sentry".into(), sentry_spiffe_id],
            control_plane_namespace,
            control_plane_trust_domain,
        }
    }

    pub async fn validate(&self, claim: &Claim) -> Result<Identity, Refusal> {
        if claim.token.is_empty() {
            return Err(Refusal::Denied("a ServiceAccount token is required".into()));
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: claim.token.clone(),
                audiences: Some(self.audiences.clone()),
            },
            ..Default::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| Refusal::Backend(format!("TokenReview: {e}")))?;
        let status = reviewed.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            return Err(Refusal::Denied(format!(
                "token not authenticated: {}",
                status.error.unwrap_or_default()
            )));
        }
        let user = status.user.unwrap_or_default();
        let username = user.username.unwrap_or_default();
        let Some(rest) = username.strip_prefix("system:serviceaccount:") else {
            return Err(Refusal::Denied(format!(
                "{username:?} is not a ServiceAccount"
            )));
        };
        let (sa_namespace, service_account) = rest
            .split_once(':')
            .ok_or_else(|| Refusal::Denied(format!("malformed username {username:?}")))?;
        if sa_namespace != claim.namespace {
            return Err(Refusal::Denied(format!(
                "the token is for namespace {sa_namespace:?}, the request for {:?}",
                claim.namespace
            )));
        }
        let pod_name = user
            .extra
            .as_ref()
            .and_then(|e| e.get("authentication.kubernetes.io/pod-name"))
            .and_then(|v| v.first())
            .cloned()
            .ok_or_else(|| Refusal::Denied("the token is not bound to a Pod".into()))?;
        let pod = Api::<Pod>::namespaced(self.client.clone(), sa_namespace)
            .get_opt(&pod_name)
            .await
            .map_err(|e| Refusal::Backend(format!("reading pod {pod_name}: {e}")))?
            .ok_or_else(|| Refusal::Denied(format!("pod {pod_name:?} not found")))?;
        let pod_sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        if pod_sa != service_account {
            return Err(Refusal::Denied(format!(
                "pod {pod_name:?} runs as {pod_sa:?}, the token is for {service_account:?}"
            )));
        }
        if CONTROL_PLANE.contains(&claim.id.as_str()) {
            if sa_namespace != self.control_plane_namespace || service_account != claim.id {
                return Err(Refusal::Denied(format!(
                    "{:?} is a control-plane identity; only its own ServiceAccount in {:?} may have it",
                    claim.id, self.control_plane_namespace
                )));
            }
            return Ok(Identity {
                trust_domain: self.control_plane_trust_domain.clone(),
                namespace: claim.namespace.clone(),
                id: claim.id.clone(),
            });
        }
        let annotations = pod.metadata.annotations.clone().unwrap_or_default();
        let app_id = annotations
            .get("dapr.io/app-id")
            .filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| pod_name.clone());
        if app_id != claim.id {
            return Err(Refusal::Denied(format!(
                "pod {pod_name:?} has app id {app_id:?}, the request asks for {:?}",
                claim.id
            )));
        }
        let trust_domain = match annotations.get("dapr.io/config").filter(|s| !s.is_empty()) {
            None => DEFAULT_APP_TRUST_DOMAIN.to_string(),
            Some(config) => self.app_trust_domain(sa_namespace, config).await?,
        };
        Ok(Identity {
            trust_domain,
            namespace: claim.namespace.clone(),
            id: claim.id.clone(),
        })
    }

    /// `accessControl.trustDomain` of the app's Configuration, `public` when unset.
    async fn app_trust_domain(&self, namespace: &str, config: &str) -> Result<String, Refusal> {
        let resource = ApiResource {
            group: "dapr.io".into(),
            version: "v1alpha1".into(),
            api_version: "dapr.io/v1alpha1".into(),
            kind: "Configuration".into(),
            plural: "configurations".into(),
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let found = api
            .get_opt(config)
            .await
            .map_err(|e| Refusal::Backend(format!("reading Configuration {config}: {e}")))?;
        Ok(found
            .and_then(|c| {
                c.data
                    .pointer("/spec/accessControl/trustDomain")
                    .and_then(|v| v.as_str())
                    .filter(|s| !s.is_empty())
                    .map(String::from)
            })
            .unwrap_or_else(|| DEFAULT_APP_TRUST_DOMAIN.to_string()))
    }
}

#[cfg(test)]
#[path = "validator_tests.rs"]
mod tests;
