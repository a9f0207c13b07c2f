//! `Subscription` (`dapr.io`), served as `v1alpha1` (one route) and `v2alpha1` (CEL-matched
//! routes, the storage version). Both put `scopes` beside `spec`, hence `no_spec` derives.
//!
//! Dapr converts between the two versions with a webhook (`/convert` on the `dapr-webhook`
//! service). The CRD in [`crd`] names that webhook the way Dapr's chart does, with a placeholder
//! namespace the operator is expected to patch at start-up together with the CA bundle; see
//! [`conversion_webhook`].

use k8s_openapi::ByteString;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, ServiceReference, WebhookClientConfig,
    WebhookConversion,
};
use kube::core::crd::{CustomResourceExt, merge_crds};

/// The version the API server stores; the other is converted on the fly.
pub const STORAGE_VERSION: &str = "v2alpha1";
/// Service that serves Dapr's conversion webhook (the operator's webhook server).
pub const CONVERSION_SERVICE: &str = "dapr-webhook";
/// Path of the conversion webhook on [`CONVERSION_SERVICE`].
pub const CONVERSION_PATH: &str = "/convert";
/// Namespace written into the chart's CRD, to be replaced by the operator's own.
pub const CONVERSION_NAMESPACE_PLACEHOLDER: &str = "replaceme";

/// `Subscription` as first released: one `route` per topic.
pub mod v1alpha1 {
    use std::collections::BTreeMap;

    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    use crate::schema::{NoDefault, Required, is_default};

    /// Root-level properties of a `v1alpha1` Subscription.
    #[derive(
        CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema,
    )]
    #[kube(
        group = "dapr.io",
        version = "v1alpha1",
        kind = "Subscription",
        plural = "subscriptions",
        namespaced,
        no_spec,
        storage = false,
        derive = "Default",
        derive = "PartialEq",
        doc = "A declarative pub/sub subscription delivering one topic to one app route."
    )]
    #[serde(rename_all = "camelCase")]
    #[schemars(transform = NoDefault(&["spec"]))]
    pub struct SubscriptionFields {
        /// Topic, pub/sub and delivery route.
        #[serde(default)]
        pub spec: SubscriptionSpec,
        /// App IDs that take this subscription; empty means every app.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub scopes: Vec<String>,
    }

    /// What to subscribe to and where to deliver it.
    #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(transform = Required(&["topic", "pubsubname", "route"]))]
    pub struct SubscriptionSpec {
        /// Topic name.
        #[serde(default)]
        pub topic: String,
        /// Pub/sub component name (all lower case, as Dapr spells it).
        #[serde(default)]
        pub pubsubname: String,
        /// Per-subscription options passed to the pub/sub component.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub metadata: BTreeMap<String, String>,
        /// App path events are delivered to.
        #[serde(default)]
        pub route: String,
        /// Batch delivery settings.
        #[serde(default, skip_serializing_if = "is_default")]
        pub bulk_subscribe: BulkSubscribe,
        /// Topic that undeliverable events are forwarded to.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub dead_letter_topic: String,
    }

    /// Batch delivery settings, identical in both versions.
    #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(transform = Required(&["enabled"]))]
    pub struct BulkSubscribe {
        /// Deliver events in batches.
        #[serde(default)]
        pub enabled: bool,
        /// Largest batch; 0 means the component's default.
        #[serde(default, skip_serializing_if = "is_zero")]
        pub max_messages_count: i32,
        /// Longest wait for a batch to fill, in milliseconds; 0 means the component's default.
        #[serde(default, skip_serializing_if = "is_zero")]
        pub max_await_duration_ms: i32,
    }

    fn is_zero(v: &i32) -> bool {
        *v == 0
    }
}

/// `Subscription` with rule-based routing; the version Kubernetes stores.
pub mod v2alpha1 {
    use std::collections::BTreeMap;

    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    use crate::schema::{NoDefault, Required, is_default};

    pub use super::v1alpha1::BulkSubscribe;

    /// Root-level properties of a `v2alpha1` Subscription.
    #[derive(
        CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema,
    )]
    #[kube(
        group = "dapr.io",
        version = "v2alpha1",
        kind = "Subscription",
        plural = "subscriptions",
        namespaced,
        no_spec,
        derive = "Default",
        derive = "PartialEq",
        doc = "A declarative pub/sub subscription routing one topic's events to app paths."
    )]
    #[serde(rename_all = "camelCase")]
    #[schemars(transform = NoDefault(&["spec"]))]
    pub struct SubscriptionFields {
        /// Topic, pub/sub and routing rules.
        #[serde(default)]
        pub spec: SubscriptionSpec,
        /// App IDs that take this subscription; empty means every app.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub scopes: Vec<String>,
    }

    /// What to subscribe to and how to route it.
    #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(transform = Required(&["pubsubname", "topic", "routes"]))]
    pub struct SubscriptionSpec {
        /// Pub/sub component name (all lower case, as Dapr spells it).
        #[serde(default)]
        pub pubsubname: String,
        /// Topic name.
        #[serde(default)]
        pub topic: String,
        /// Per-subscription options passed to the pub/sub component.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub metadata: BTreeMap<String, String>,
        /// Where events go.
        #[serde(default)]
        pub routes: Routes,
        /// Topic that undeliverable events are forwarded to.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub dead_letter_topic: String,
        /// Batch delivery settings.
        #[serde(default, skip_serializing_if = "is_default")]
        pub bulk_subscribe: BulkSubscribe,
    }

    /// Routing table: the first matching rule wins, else `default`.
    #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Routes {
        /// Rules tested in order, most specific first.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub rules: Vec<Rule>,
        /// Path for events no rule matches.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub default: String,
    }

    /// Sends events matching a CEL expression to a path.
    #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(transform = Required(&["match", "path"]))]
    pub struct Rule {
        /// CEL expression over the CloudEvent, e.g. `event.type == "widget"`.
        #[serde(rename = "match", default)]
        pub match_: String,
        /// App path for matching events.
        #[serde(default)]
        pub path: String,
    }
}

/// Webhook conversion pointing at the given service namespace, optionally trusting `ca_bundle`
/// (PEM). The operator patches the installed CRD with this once its webhook serves
/// [`CONVERSION_PATH`], as Dapr's operator does.
pub fn conversion_webhook(namespace: &str, ca_bundle: Option<Vec<u8>>) -> CustomResourceConversion {
    CustomResourceConversion {
        strategy: "Webhook".into(),
        webhook: Some(WebhookConversion {
            client_config: Some(WebhookClientConfig {
                ca_bundle: ca_bundle.map(ByteString),
                service: Some(ServiceReference {
                    name: CONVERSION_SERVICE.into(),
                    namespace: namespace.into(),
                    path: Some(CONVERSION_PATH.into()),
                    port: None,
                }),
                url: None,
            }),
            // Listed as Dapr's chart lists them; the API server picks `v1`, the one it speaks.
            conversion_review_versions: vec!["v1".into(), "v2alpha1".into()],
        }),
    }
}

/// The Subscription CRD serving both versions, storing `v2alpha1`, with Dapr's conversion
/// webhook stanza (placeholder namespace, no CA bundle).
pub fn crd() -> CustomResourceDefinition {
    let mut crd = merge_crds(
        vec![v1alpha1::Subscription::crd(), v2alpha1::Subscription::crd()],
        STORAGE_VERSION,
    )
    .expect("both Subscription versions share group, kind and names");
    // Oldest first, as Dapr lists them; the API server orders by version priority anyway.
    crd.spec.versions.sort_by(|a, b| a.name.cmp(&b.name));
    crd.spec.conversion = Some(conversion_webhook(CONVERSION_NAMESPACE_PLACEHOLDER, None));
    crate::finalize(crd)
}
