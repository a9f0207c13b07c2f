//! `Component` (`dapr.io/v1alpha1`): one configured building block (state store, pub/sub,
//! binding, secret store, ...), the resource the sidecar loads most.
//!
//! Dapr puts `auth` and `scopes` beside `spec` at the root of the object, so the derive uses
//! `no_spec`: the generated [`Component`] keeps [`ComponentFields`] in its `spec` field on the
//! Rust side, and flattens it on the wire. Reach the real spec as `component.spec.spec`.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Auth, NameValuePair};
use crate::schema::{NoDefault, Required, is_default};

/// Root-level properties of a Dapr Component (everything except `apiVersion`, `kind` and
/// `metadata`).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "dapr.io",
    version = "v1alpha1",
    kind = "Component",
    plural = "components",
    namespaced,
    no_spec,
    derive = "Default",
    derive = "PartialEq",
    doc = "A Dapr component: the type, version and metadata of one building block instance."
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = NoDefault(&["spec"]))]
pub struct ComponentFields {
    /// What to instantiate and how to configure it.
    #[serde(default)]
    pub spec: ComponentSpec,
    /// Which secret store resolves the `secretKeyRef`s in `spec.metadata`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub auth: Auth,
    /// App IDs allowed to use the component; empty means every app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

/// The building block to instantiate and its settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["type", "version", "metadata"]))]
pub struct ComponentSpec {
    /// Building block and implementation, e.g. `state.redis`; selects the component factory.
    #[serde(rename = "type", default)]
    pub type_: String,
    /// Implementation version, e.g. `v1`; lets one type ship breaking revisions side by side.
    #[serde(default)]
    pub version: String,
    /// Keep the sidecar running when this component fails to initialise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_errors: bool,
    /// Implementation-specific settings.
    #[serde(default)]
    pub metadata: Vec<NameValuePair>,
    /// How long initialisation may take (Go duration such as `5s`); empty means Dapr's default.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub init_timeout: String,
}

impl Component {
    /// The component's metadata entries, the list a component factory is configured from.
    pub fn name_value_pairs(&self) -> &[NameValuePair] {
        &self.spec.spec.metadata
    }

    /// App IDs the component is restricted to; empty means every app may use it.
    pub fn scopes(&self) -> &[String] {
        &self.spec.scopes
    }

    /// Whether `app_id` may use this component, by Dapr's rule that no scopes means everyone.
    pub fn is_app_scoped(&self, app_id: &str) -> bool {
        crate::is_app_scoped(&self.spec.scopes, app_id)
    }
}

/// The CRD for [`Component`] as committed under `charts/dapr/crds/`.
pub fn crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    crate::derived::<Component>()
}
