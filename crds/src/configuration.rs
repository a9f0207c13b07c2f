//! `Configuration` (`dapr.io/v1alpha1`): per-app (and control-plane) runtime settings —
//! tracing, metrics, mTLS, access control, middleware pipelines, feature flags.
//!
//! Unlike the other Dapr resources this one has a conventional `spec` and nothing beside it.
//! Sub-objects Dapr models as pointers are `Option`s here, so "not configured" stays
//! distinguishable from "configured with defaults" (Dapr relies on that, e.g. for `metric`).

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::NameValuePair;
use crate::schema::Required;

/// Runtime settings a sidecar (or, for the `daprsystem` configuration, the control plane)
/// applies.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "dapr.io",
    version = "v1alpha1",
    kind = "Configuration",
    plural = "configurations",
    namespaced,
    derive = "Default",
    derive = "PartialEq",
    doc = "A Dapr configuration: runtime settings shared by the apps that reference it."
)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationSpec {
    /// Middleware applied to calls the sidecar makes to its app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_http_pipeline: Option<PipelineSpec>,
    /// Middleware applied to calls the sidecar receives on its HTTP API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_pipeline: Option<PipelineSpec>,
    /// Distributed tracing exporters and sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingSpec>,
    /// Metrics settings under the older singular key, still honoured by Dapr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = { "enabled": true }))]
    pub metric: Option<MetricSpec>,
    /// Metrics settings; takes precedence over `metric` when both are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = { "enabled": true }))]
    pub metrics: Option<MetricSpec>,
    /// Workload identity certificates and the control plane's trust domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<MtlsSpec>,
    /// Which secrets each secret store exposes to the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<SecretsSpec>,
    /// Which callers may invoke which operations on this app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control: Option<AccessControlSpec>,
    /// The name resolution component used for service invocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_resolution: Option<NameResolutionSpec>,
    /// Preview features switched on or off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<FeatureSpec>,
    /// Which Dapr APIs the app may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<ApiSpec>,
    /// Restrictions on which component types may be loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<ComponentsSpec>,
    /// Sidecar logging behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<LoggingSpec>,
    /// Sandbox policy for WebAssembly components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm: Option<WasmSpec>,
    /// Workflow engine concurrency and retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<WorkflowSpec>,
}

/// An ordered list of middleware; order matters because each handler wraps the next.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["handlers"]))]
pub struct PipelineSpec {
    /// Middleware components, outermost first.
    #[serde(default)]
    pub handlers: Vec<HandlerSpec>,
}

/// One middleware in a pipeline, naming a middleware component.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["name", "type"]))]
pub struct HandlerSpec {
    /// Name of the middleware Component resource.
    #[serde(default)]
    pub name: String,
    /// Component type, e.g. `middleware.http.uppercase`.
    #[serde(rename = "type", default)]
    pub type_: String,
    /// Restricts the handler to matching requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<SelectorSpec>,
}

/// Request fields a handler is restricted to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["fields"]))]
pub struct SelectorSpec {
    /// All of these must match.
    #[serde(default)]
    pub fields: Vec<SelectorField>,
}

/// One field/value condition of a selector.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["field", "value"]))]
pub struct SelectorField {
    /// Request field to inspect.
    #[serde(default)]
    pub field: String,
    /// Value it must have.
    #[serde(default)]
    pub value: String,
}

/// Tracing settings; any exporter left out is simply not used.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["samplingRate"]))]
pub struct TracingSpec {
    /// Fraction of traces to sample, as a decimal string (`"1"` samples everything).
    #[serde(default)]
    pub sampling_rate: String,
    /// Also write spans to the sidecar's standard output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<bool>,
    /// Zipkin exporter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zipkin: Option<ZipkinSpec>,
    /// OpenTelemetry (OTLP) exporter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otel: Option<OtelSpec>,
}

/// Where to send spans in Zipkin format.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["endpointAddress"]))]
pub struct ZipkinSpec {
    /// Collector URL, e.g. `http://zipkin.default.svc:9411/api/v2/spans`.
    #[serde(default)]
    pub endpoint_address: String,
}

/// Where and how to send spans over OTLP.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["protocol", "endpointAddress", "isSecure"]))]
pub struct OtelSpec {
    /// `grpc` or `http`.
    #[serde(default)]
    pub protocol: String,
    /// Collector address (host:port for gRPC, URL for HTTP).
    #[serde(default)]
    pub endpoint_address: String,
    /// Use TLS towards the collector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_secure: Option<bool>,
    /// Extra request headers, e.g. collector API keys, possibly from secrets or the environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<NameValuePair>,
    /// Export request timeout as a Go duration string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// Metrics settings; the CRD defaults it to `{enabled: true}` as Dapr does.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["enabled"]))]
pub struct MetricSpec {
    /// Serve metrics at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Count API errors by Dapr error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_error_codes: Option<bool>,
    /// HTTP server metric cardinality controls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<MetricHttp>,
    /// Label rewriting rules that bound cardinality.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<MetricsRule>,
    /// Histogram bucket bounds in milliseconds; unset means Dapr's standard buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_distribution_buckets: Option<Vec<i64>>,
    /// Histogram settings for workflow and activity latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<WorkflowMetrics>,
}

/// Histogram settings specific to workflow metrics.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowMetrics {
    /// Bucket bounds in `latency_distribution_units`; unset falls back to the shared buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_distribution_buckets: Option<Vec<i64>>,
    /// Unit of the bucket bounds as a Go duration string (`1ms`, `1s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_distribution_units: Option<String>,
}

/// Cardinality controls for HTTP server metrics.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricHttp {
    /// Label metrics with full paths (high cardinality) instead of route templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub increased_cardinality: Option<bool>,
    /// Path patterns to collapse request paths into.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_matching: Vec<String>,
    /// Leave the HTTP verb out of metric labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_verbs: Option<bool>,
}

/// Label rewriting for one metric.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["name", "labels"]))]
pub struct MetricsRule {
    /// Metric name.
    #[serde(default)]
    pub name: String,
    /// Labels of that metric to rewrite.
    #[serde(default)]
    pub labels: Vec<MetricLabel>,
}

/// Regex-based rewriting of one label's values.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["name", "regex"]))]
pub struct MetricLabel {
    /// Label name.
    #[serde(default)]
    pub name: String,
    /// Replacement value → regex its raw values must match.
    #[serde(default)]
    pub regex: BTreeMap<String, String>,
}

/// Workload certificate and trust settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["enabled", "sentryAddress", "controlPlaneTrustDomain"]))]
pub struct MtlsSpec {
    /// Use mTLS between sidecars; an unset value counts as enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Lifetime of workload certificates (Go duration).
    #[serde(
        rename = "workloadCertTTL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_cert_ttl: Option<String>,
    /// Tolerated clock skew when checking certificate validity (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_clock_skew: Option<String>,
    /// Address of the Sentry CA.
    #[serde(default)]
    pub sentry_address: String,
    /// Trust domain of the control plane's identities.
    #[serde(default)]
    pub control_plane_trust_domain: String,
    /// Extra token validators Sentry accepts for certificate requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_validators: Vec<ValidatorSpec>,
}

impl MtlsSpec {
    /// Dapr's rule: mTLS is on unless explicitly disabled (also when the section is absent).
    pub fn is_enabled(mtls: Option<&Self>) -> bool {
        mtls.and_then(|m| m.enabled).unwrap_or(true)
    }
}

/// A token validator for Sentry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["name"]))]
pub struct ValidatorSpec {
    /// Validator kind; Dapr knows only `jwks`.
    #[serde(default)]
    #[schemars(extend("enum" = ["jwks"]))]
    pub name: String,
    /// Validator-specific options, left to the validator to interpret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::free_form_object")]
    pub options: Option<serde_json::Value>,
}

/// Secret access rules, one entry per secret store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["scopes"]))]
pub struct SecretsSpec {
    /// Per-store rules.
    #[serde(default)]
    pub scopes: Vec<SecretsScope>,
}

/// Which secrets of one store the app may read.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["storeName"]))]
pub struct SecretsScope {
    /// Secret store component name.
    #[serde(default)]
    pub store_name: String,
    /// `allow` or `deny` for secrets not listed below.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub default_access: String,
    /// Secrets readable regardless of the default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_secrets: Vec<String>,
    /// Secrets never readable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_secrets: Vec<String>,
}

/// Service invocation access control for the app that uses this configuration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessControlSpec {
    /// `allow` or `deny` for callers no policy matches.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub default_action: String,
    /// Trust domain of the app itself.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trust_domain: String,
    /// Per-caller policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AppPolicySpec>,
}

/// Access rules for one calling app.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["appId"]))]
pub struct AppPolicySpec {
    /// The caller's app ID.
    #[serde(default)]
    pub app_id: String,
    /// `allow` or `deny` for this caller's operations no rule matches.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub default_action: String,
    /// The caller's trust domain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trust_domain: String,
    /// The caller's namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Per-operation rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<AppOperationAction>,
}

/// Allow or deny one operation (path prefix) for a caller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["name", "action"]))]
pub struct AppOperationAction {
    /// Operation path, with `*` / `**` wildcards.
    #[serde(default)]
    pub name: String,
    /// `allow` or `deny`.
    #[serde(default)]
    pub action: String,
    /// HTTP verbs the rule applies to (`*` for all); ignored for gRPC calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_verb: Vec<String>,
}

/// Which name resolution component to use and how to configure it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["component", "version", "configuration"]))]
pub struct NameResolutionSpec {
    /// Resolver, e.g. `mdns`, `kubernetes`, `consul`.
    #[serde(default)]
    pub component: String,
    /// Resolver version.
    #[serde(default)]
    pub version: String,
    /// Resolver-specific settings; their shape belongs to the resolver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::free_form_object")]
    pub configuration: Option<serde_json::Value>,
}

/// A preview feature toggle.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["name", "enabled"]))]
pub struct FeatureSpec {
    /// Feature name as Dapr spells it.
    #[serde(default)]
    pub name: String,
    /// Whether it is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Allow/deny lists of Dapr APIs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiSpec {
    /// APIs the app may call; when set, everything else is denied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<ApiAccessRule>,
    /// APIs the app may not call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied: Vec<ApiAccessRule>,
}

/// Identifies one Dapr API.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = Required(&["name", "version"]))]
pub struct ApiAccessRule {
    /// API name, e.g. `state`, `invoke`.
    #[serde(default)]
    pub name: String,
    /// API version, e.g. `v1.0`, `v1.0-alpha1`.
    #[serde(default)]
    pub version: String,
    /// `http` or `grpc`; empty means both.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
}

/// Component loading restrictions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentsSpec {
    /// Component types (optionally with `/version`) that must not be loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// Logging settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoggingSpec {
    /// Per-request API logging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_logging: Option<ApiLoggingSpec>,
}

/// API logging settings; the sidecar's `--enable-api-logging` flag overrides `enabled`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiLoggingSpec {
    /// Log every API call by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Log route templates instead of full URLs, which may carry personal data.
    #[serde(
        rename = "obfuscateURLs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub obfuscate_urls: Option<bool>,
    /// Leave health probes out of the API log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omit_health_checks: Option<bool>,
}

/// WebAssembly sandbox policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WasmSpec {
    /// Force strict sandboxing (no real clocks or randomness) on every Wasm component.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict_sandbox: bool,
}

/// Workflow engine limits and retention.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSpec {
    /// Concurrent workflow invocations per sidecar; 0 means unlimited.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_concurrent_workflow_invocations: i32,
    /// Concurrent activity invocations per sidecar; 0 means unlimited.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_concurrent_activity_invocations: i32,
    /// Concurrent workflow invocations across all replicas, enforced by the scheduler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_max_concurrent_workflow_invocations: Option<i32>,
    /// Concurrent activity invocations across all replicas, enforced by the scheduler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_max_concurrent_activity_invocations: Option<i32>,
    /// Per-workflow-name global limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workflow_concurrency_limits: Vec<NamedConcurrencyLimit>,
    /// Per-activity-name global limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activity_concurrency_limits: Vec<NamedConcurrencyLimit>,
    /// When finished workflow instances are purged; unset keeps them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_retention_policy: Option<WorkflowStateRetentionPolicy>,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

/// A global concurrency limit for one workflow or activity name.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamedConcurrencyLimit {
    /// Workflow or activity name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Maximum concurrent invocations across all replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<i32>,
}

/// Time-to-live of terminated workflow state (Go durations; `0s` purges at once). A specific
/// terminal state's TTL wins over `any_terminal`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStateRetentionPolicy {
    /// TTL for any terminal state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any_terminal: Option<String>,
    /// TTL for completed instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<String>,
    /// TTL for failed instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// TTL for terminated instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated: Option<String>,
}

/// The CRD for [`Configuration`] as committed under `charts/dapr/crds/`.
pub fn crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    crate::derived::<Configuration>()
}
