//! `HTTPEndpoint` (`dapr.io/v1alpha1`): a non-Dapr HTTP service that apps invoke through the
//! sidecar by name. `auth` and `scopes` sit beside `spec`, so the derive uses `no_spec`; reach
//! the spec as `endpoint.spec.spec`.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Auth, NameValuePair, Tls};
use crate::schema::{NoDefault, Required, is_default};

/// Root-level properties of a Dapr HTTPEndpoint.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "dapr.io",
    version = "v1alpha1",
    kind = "HTTPEndpoint",
    plural = "httpendpoints",
    singular = "httpendpoint",
    namespaced,
    no_spec,
    derive = "Default",
    derive = "PartialEq",
    doc = "An external HTTP service reachable through Dapr service invocation."
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = NoDefault(&["spec"]))]
pub struct HttpEndpointFields {
    /// Where the service lives and how to call it.
    #[serde(default)]
    pub spec: HttpEndpointSpec,
    /// Which secret store resolves the `secretKeyRef`s in headers and TLS settings.
    #[serde(default, skip_serializing_if = "is_default")]
    pub auth: Auth,
    /// App IDs allowed to call the endpoint; empty means every app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

/// Target URL, headers and TLS for calls to the external service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["baseUrl"]))]
pub struct HttpEndpointSpec {
    /// Scheme, host and optional base path that invoked method paths are appended to.
    #[serde(default)]
    pub base_url: String,
    /// Headers added to every request, possibly from secrets or the environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<NameValuePair>,
    /// Client TLS settings; unset means the system roots and no client certificate.
    #[serde(rename = "clientTLS", default, skip_serializing_if = "Option::is_none")]
    pub client_tls: Option<Tls>,
}

/// The CRD for [`HTTPEndpoint`] as committed under `charts/dapr/crds/`.
pub fn crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    crate::derived::<HTTPEndpoint>()
}
