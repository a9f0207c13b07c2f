//! The generated schemas must be ones a Kubernetes API server accepts (structural) and must
//! carry Dapr's shape: root-level `auth`/`scopes`, Dapr's required fields, and free-form values
//! where Dapr allows any JSON.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

fn schema_of(crd: &CustomResourceDefinition, version: &str) -> Value {
    let v = crd
        .spec
        .versions
        .iter()
        .find(|v| v.name == version)
        .unwrap_or_else(|| panic!("{} has no version {version}", crd.spec.names.kind));
    serde_json::to_value(
        v.schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("every version carries a schema"),
    )
    .expect("schema serialises")
}

fn at<'a>(schema: &'a Value, pointer: &str) -> &'a Value {
    schema
        .pointer(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in schema"))
}

fn required(schema: &Value, pointer: &str) -> Vec<String> {
    at(schema, pointer)
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks the rules the API server enforces for `apiextensions.k8s.io/v1` schemas: every node
/// has a type unless it preserves unknown fields, no combinators or references, no `nullable`
/// (Dapr's schemas have none), and `additionalProperties` never beside `properties`.
fn assert_structural(node: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(obj) = node.as_object() else {
        errors.push(format!("{path}: schema is not an object"));
        return;
    };
    let preserves = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    if !preserves
        && obj
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        errors.push(format!("{path}: no type"));
    }
    for banned in [
        "anyOf",
        "oneOf",
        "allOf",
        "not",
        "$ref",
        "nullable",
        "definitions",
        "$defs",
    ] {
        if obj.contains_key(banned) {
            errors.push(format!("{path}: has {banned}"));
        }
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        errors.push(format!("{path}: both properties and additionalProperties"));
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            assert_structural(child, &format!("{path}.{name}"), errors);
        }
        for req in obj
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let req = req.as_str().unwrap_or_default();
            if !props.contains_key(req) {
                errors.push(format!("{path}: requires unknown property {req}"));
            }
        }
    }
    if let Some(items) = obj.get("items") {
        assert_structural(items, &format!("{path}[]"), errors);
    }
    if let Some(extra) = obj.get("additionalProperties") {
        assert_structural(extra, &format!("{path}{{}}"), errors);
    }
}

#[test]
fn every_schema_is_structural() {
    let mut errors = Vec::new();
    for crd in crds::all() {
        for version in &crd.spec.versions {
            let schema = schema_of(&crd, &version.name);
            let root = format!("{}/{}", crd.spec.names.kind, version.name);
            assert_structural(&schema, &root, &mut errors);
            assert_eq!(
                schema.get("x-kubernetes-preserve-unknown-fields"),
                None,
                "{root}: the root must prune unknown fields, as Dapr's does"
            );
        }
    }
    assert!(
        errors.is_empty(),
        "non-structural schema:\n{}",
        errors.join("\n")
    );
}

#[test]
fn component_schema_has_auth_and_scopes_beside_spec() {
    let crd = crds::component::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("components.dapr.io"));
    assert_eq!(crd.spec.group, "dapr.io");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.plural, "components");
    assert_eq!(crd.spec.names.list_kind.as_deref(), Some("ComponentList"));

    let schema = schema_of(&crd, "v1alpha1");
    let props = at(&schema, "/properties")
        .as_object()
        .expect("root has properties");
    for key in ["spec", "auth", "scopes"] {
        assert!(props.contains_key(key), "root lacks {key}: {props:?}");
    }
    assert!(
        required(&schema, "").is_empty(),
        "nothing is required at the root"
    );

    let spec_required = required(&schema, "/properties/spec");
    for key in ["type", "version", "metadata"] {
        assert!(
            spec_required.iter().any(|r| r == key),
            "spec.required lacks {key}"
        );
    }
    assert_eq!(
        at(
            &schema,
            "/properties/spec/properties/metadata/items/properties/value"
        ),
        &json!({
            "description": at(&schema, "/properties/spec/properties/metadata/items/properties/value/description"),
            "x-kubernetes-preserve-unknown-fields": true,
        }),
        "metadata value accepts any JSON type"
    );
    assert_eq!(
        required(&schema, "/properties/spec/properties/metadata/items"),
        ["name"]
    );
    assert_eq!(
        required(
            &schema,
            "/properties/spec/properties/metadata/items/properties/secretKeyRef"
        ),
        ["name"]
    );
    assert_eq!(required(&schema, "/properties/auth"), ["secretStore"]);
    assert_eq!(
        at(&schema, "/properties/scopes/items/type"),
        &json!("string")
    );
}

#[test]
fn no_schema_defaults_beyond_daprs() {
    // Rust defaults exist for lenient parsing; only Dapr's own CRD defaults may reach the API
    // server, or it would start filling in fields Dapr leaves empty.
    fn collect(node: &Value, path: &str, out: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                if map.contains_key("default") && map.contains_key("type") {
                    out.push(path.to_owned());
                }
                for (k, v) in map {
                    collect(v, &format!("{path}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    collect(v, &format!("{path}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    for crd in crds::all() {
        for version in &crd.spec.versions {
            collect(
                &schema_of(&crd, &version.name),
                &format!("{}/{}", crd.spec.names.kind, version.name),
                &mut found,
            );
        }
    }
    found.sort();
    assert_eq!(
        found,
        [
            "Configuration/v1alpha1/properties/spec/properties/metric",
            "Configuration/v1alpha1/properties/spec/properties/metrics",
            "HTTPEndpoint/v1alpha1/properties/spec/properties/clientTLS/properties/renegotiation",
        ]
    );
    let cfg = schema_of(&crds::configuration::crd(), "v1alpha1");
    assert_eq!(
        at(&cfg, "/properties/spec/properties/metric/default"),
        &json!({"enabled": true})
    );
    let ep = schema_of(&crds::http_endpoint::crd(), "v1alpha1");
    let reneg = at(
        &ep,
        "/properties/spec/properties/clientTLS/properties/renegotiation",
    );
    assert_eq!(reneg["default"], json!("Never"));
    assert_eq!(
        reneg["enum"],
        json!(["Never", "OnceAsClient", "FreelyAsClient"])
    );
}

#[test]
fn configuration_schema_keeps_free_form_parts_free() {
    let schema = schema_of(&crds::configuration::crd(), "v1alpha1");
    assert!(
        required(&schema, "").is_empty(),
        "Dapr allows a Configuration without spec"
    );
    let spec = "/properties/spec/properties";
    assert_eq!(
        at(
            &schema,
            &format!(
                "{spec}/nameResolution/properties/configuration/x-kubernetes-preserve-unknown-fields"
            )
        ),
        &json!(true)
    );
    assert_eq!(
        at(
            &schema,
            &format!(
                "{spec}/mtls/properties/tokenValidators/items/properties/options/x-kubernetes-preserve-unknown-fields"
            )
        ),
        &json!(true)
    );
    assert_eq!(
        at(
            &schema,
            &format!(
                "{spec}/tracing/properties/otel/properties/headers/items/properties/value/x-kubernetes-preserve-unknown-fields"
            )
        ),
        &json!(true)
    );
    let mut mtls = required(&schema, &format!("{spec}/mtls"));
    mtls.sort();
    assert_eq!(
        mtls,
        ["controlPlaneTrustDomain", "enabled", "sentryAddress"]
    );
    assert_eq!(
        required(&schema, &format!("{spec}/features/items")),
        ["enabled", "name"]
    );
    assert_eq!(
        required(
            &schema,
            &format!("{spec}/accessControl/properties/policies/items")
        ),
        ["appId"]
    );
    let keys: Vec<&String> = at(&schema, spec)
        .as_object()
        .expect("spec has properties")
        .keys()
        .collect();
    for key in [
        "appHttpPipeline",
        "httpPipeline",
        "tracing",
        "metric",
        "metrics",
        "mtls",
        "secrets",
        "accessControl",
        "nameResolution",
        "features",
        "api",
        "components",
        "logging",
        "wasm",
        "workflow",
    ] {
        assert!(keys.iter().any(|k| *k == key), "spec lacks {key}");
    }
}

#[test]
fn subscription_serves_both_versions_and_stores_v2alpha1() {
    let crd = crds::subscription::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("subscriptions.dapr.io"));
    let versions: Vec<(&str, bool, bool)> = crd
        .spec
        .versions
        .iter()
        .map(|v| (v.name.as_str(), v.served, v.storage))
        .collect();
    assert_eq!(
        versions,
        [("v1alpha1", true, false), ("v2alpha1", true, true)]
    );
    let conversion = crd.spec.conversion.as_ref().expect("conversion is set");
    assert_eq!(conversion.strategy, "Webhook");

    let v1 = schema_of(&crd, "v1alpha1");
    let mut req = required(&v1, "/properties/spec");
    req.sort();
    assert_eq!(req, ["pubsubname", "route", "topic"]);
    assert!(at(&v1, "/properties").get("scopes").is_some());

    let v2 = schema_of(&crd, "v2alpha1");
    let mut req = required(&v2, "/properties/spec");
    req.sort();
    assert_eq!(req, ["pubsubname", "routes", "topic"]);
    assert_eq!(
        required(
            &v2,
            "/properties/spec/properties/routes/properties/rules/items"
        ),
        ["match", "path"]
    );
    assert_eq!(
        at(
            &v2,
            "/properties/spec/properties/metadata/additionalProperties/type"
        ),
        &json!("string")
    );
}

#[test]
fn resiliency_and_http_endpoint_names_match_dapr() {
    let res = crds::resiliency::crd();
    assert_eq!(res.metadata.name.as_deref(), Some("resiliencies.dapr.io"));
    let schema = schema_of(&res, "v1alpha1");
    let mut req = required(&schema, "/properties/spec");
    req.sort();
    assert_eq!(req, ["policies", "targets"]);
    assert!(at(&schema, "/properties").get("scopes").is_some());
    assert_eq!(
        at(
            &schema,
            "/properties/spec/properties/policies/properties/timeouts/additionalProperties/type"
        ),
        &json!("string")
    );

    let ep = crds::http_endpoint::crd();
    assert_eq!(ep.metadata.name.as_deref(), Some("httpendpoints.dapr.io"));
    assert_eq!(ep.spec.names.kind, "HTTPEndpoint");
    assert_eq!(ep.spec.names.singular.as_deref(), Some("httpendpoint"));
    let schema = schema_of(&ep, "v1alpha1");
    assert_eq!(required(&schema, "/properties/spec"), ["baseUrl"]);
    for key in ["spec", "auth", "scopes"] {
        assert!(
            at(&schema, "/properties").get(key).is_some(),
            "root lacks {key}"
        );
    }
}

#[test]
fn all_lists_every_crd_once_with_daprs_label() {
    let names: Vec<String> = crds::all()
        .into_iter()
        .map(|crd| {
            assert_eq!(
                crd.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("app.kubernetes.io/part-of"))
                    .map(String::as_str),
                Some("dapr")
            );
            crd.metadata.name.expect("CRDs are named")
        })
        .collect();
    assert_eq!(
        names,
        [
            "components.dapr.io",
            "configurations.dapr.io",
            "subscriptions.dapr.io",
            "resiliencies.dapr.io",
            "httpendpoints.dapr.io",
        ]
    );
}
