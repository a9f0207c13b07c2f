//! `Resiliency` (`dapr.io/v1alpha1`): named timeout, retry and circuit breaker policies and
//! the apps, actors and components they apply to. `scopes` sits beside `spec`, so the derive
//! uses `no_spec`; reach the spec as `resiliency.spec.spec`.
//!
//! Durations stay Go duration strings (`5s`, `1m30s`) and expressions stay text: parsing them is
//! the runtime's job, and keeping them verbatim keeps manifests round-tripping byte for byte.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema::{NoDefault, Required, is_default};

/// Root-level properties of a Dapr Resiliency.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "dapr.io",
    version = "v1alpha1",
    kind = "Resiliency",
    plural = "resiliencies",
    namespaced,
    no_spec,
    derive = "Default",
    derive = "PartialEq",
    doc = "Dapr resiliency policies and the targets they protect."
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = NoDefault(&["spec"]))]
pub struct ResiliencyFields {
    /// Policies and targets.
    #[serde(default)]
    pub spec: ResiliencySpec,
    /// App IDs this resiliency applies to; empty means every app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

/// Named policies and their assignment to targets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["policies", "targets"]))]
pub struct ResiliencySpec {
    /// Policy definitions, referenced by name from `targets`.
    #[serde(default)]
    pub policies: Policies,
    /// Which policies guard which apps, actors and components.
    #[serde(default)]
    pub targets: Targets,
}

/// Policy definitions by name.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Policies {
    /// Name → Go duration.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub timeouts: BTreeMap<String, String>,
    /// Name → retry policy.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub retries: BTreeMap<String, Retry>,
    /// Name → circuit breaker.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub circuit_breakers: BTreeMap<String, CircuitBreaker>,
}

/// How to retry a failed call.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// `constant` or `exponential`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub policy: String,
    /// Wait between attempts for `constant` (Go duration).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub duration: String,
    /// Upper bound on the wait for `exponential` (Go duration).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub max_interval: String,
    /// Attempts after the first; -1 retries forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<i64>,
    /// Restricts retries to these status codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching: Option<RetryMatching>,
}

/// Status codes worth retrying, as comma-separated codes and ranges (`500-599,429`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryMatching {
    /// HTTP status codes to retry.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub http_status_codes: String,
    /// gRPC status codes to retry.
    #[serde(
        rename = "gRPCStatusCodes",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub grpc_status_codes: String,
}

/// When to stop calling a failing target, and for how long.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CircuitBreaker {
    /// Calls allowed through while half-open.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_requests: i64,
    /// Period after which failure counts reset while closed (Go duration).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interval: String,
    /// How long the breaker stays open (Go duration).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub timeout: String,
    /// CEL condition that opens the breaker, e.g. `consecutiveFailures > 5`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trip: String,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// Policy assignments by target kind.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Targets {
    /// App ID (or HTTPEndpoint name) → policies for service invocation to it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub apps: BTreeMap<String, EndpointPolicyNames>,
    /// Actor type → policies for calls to its actors.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub actors: BTreeMap<String, ActorPolicyNames>,
    /// Component name → policies for calls to and from it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, ComponentPolicyNames>,
}

/// Policies for the two directions a component is called in.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentPolicyNames {
    /// Component → app deliveries (pub/sub messages, input bindings).
    #[serde(default, skip_serializing_if = "is_default")]
    pub inbound: PolicyNames,
    /// App → component calls (state, output bindings, publishing).
    #[serde(default, skip_serializing_if = "is_default")]
    pub outbound: PolicyNames,
}

/// Names of policies defined under `policies`; empty means none of that kind.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyNames {
    /// Name of an entry in `policies.timeouts`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub timeout: String,
    /// Name of an entry in `policies.retries`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub retry: String,
    /// Name of an entry in `policies.circuitBreakers`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub circuit_breaker: String,
}

/// Policy names for an app target; breakers are kept per app instance.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPolicyNames {
    /// Name of an entry in `policies.timeouts`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub timeout: String,
    /// Name of an entry in `policies.retries`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub retry: String,
    /// Name of an entry in `policies.circuitBreakers`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub circuit_breaker: String,
    /// How many per-instance breakers to keep before evicting.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub circuit_breaker_cache_size: i64,
}

/// Policy names for an actor type; the breaker may be per type, per actor ID or both.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActorPolicyNames {
    /// Name of an entry in `policies.timeouts`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub timeout: String,
    /// Name of an entry in `policies.retries`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub retry: String,
    /// Name of an entry in `policies.circuitBreakers`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub circuit_breaker: String,
    /// `type`, `id` or `both`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub circuit_breaker_scope: String,
    /// How many per-actor breakers to keep before evicting.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub circuit_breaker_cache_size: i64,
}

/// The CRD for [`Resiliency`] as committed under `charts/dapr/crds/`.
pub fn crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    crate::derived::<Resiliency>()
}
