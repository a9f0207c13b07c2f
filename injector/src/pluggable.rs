//! Pluggable-component containers the injector adds itself (`dapr.io/inject-pluggable-components`
//! on the Pod): every Component of the Pod's namespace that carries a container spec in
//! its `dapr.io/component-container` annotation and is scoped to the app (or to no app)
//! brings that container, once per image, named after the Component when the spec has
//! no name. Pure: the server lists the Components.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Container;
use serde_json::Value;

/// The Component annotation holding a container spec (JSON).
pub const COMPONENT_CONTAINER: &str = "dapr.io/component-container";

/// The containers to inject for `app_id` from `components` (Component objects as JSON);
/// a spec that does not parse is skipped with a message in the returned notes.
pub fn injectable(app_id: &str, components: &[Value]) -> (Vec<Container>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let mut images = BTreeSet::new();
    for c in components {
        let name = c["metadata"]["name"].as_str().unwrap_or_default();
        let Some(spec) = c["metadata"]["annotations"][COMPONENT_CONTAINER].as_str() else {
            continue;
        };
        if spec.is_empty() {
            continue;
        }
        let mut container: Container = match serde_json::from_str(spec) {
            Ok(container) => container,
            Err(e) => {
                notes.push(format!(
                    "Component {name}: {COMPONENT_CONTAINER} is not a container: {e}"
                ));
                continue;
            }
        };
        let scopes: Vec<&str> = c["scopes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !scopes.is_empty() && !scopes.contains(&app_id) {
            continue;
        }
        let image = container.image.clone().unwrap_or_default();
        if !images.insert(image) {
            continue;
        }
        if container.name.is_empty() {
            container.name = name.to_string();
        }
        out.push(container);
    }
    (out, notes)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn component(name: &str, container: Option<&str>, scopes: &[&str]) -> Value {
        let mut c = json!({
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": name, "annotations": {}},
            "spec": {"type": "state.my-pc", "version": "v1"},
            "scopes": scopes,
        });
        if let Some(spec) = container {
            c["metadata"]["annotations"][COMPONENT_CONTAINER] = json!(spec);
        }
        c
    }

    #[test]
    fn scoped_components_bring_their_container_once_per_image() {
        let components = [
            component("plain", None, &[]),
            component("pc-a", Some(r#"{"image": "pc:1"}"#), &[]),
            component(
                "pc-a-again",
                Some(r#"{"name": "dup", "image": "pc:1"}"#),
                &[],
            ),
            component(
                "pc-b",
                Some(r#"{"name": "bee", "image": "pc:2"}"#),
                &["orders"],
            ),
            component("pc-c", Some(r#"{"image": "pc:3"}"#), &["payments"]),
            component("broken", Some("{not json"), &[]),
        ];
        let (containers, notes) = injectable("orders", &components);
        let names: Vec<(&str, Option<&str>)> = containers
            .iter()
            .map(|c| (c.name.as_str(), c.image.as_deref()))
            .collect();
        assert_eq!(names, [("pc-a", Some("pc:1")), ("bee", Some("pc:2"))]);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("broken"));
    }
}
