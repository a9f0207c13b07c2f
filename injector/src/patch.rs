//! The pure patch builder: a Pod, its namespace and the injector's settings in, a JSON
//! Patch (RFC 6902, `json-patch` 4 as kube uses it) out, built the way Dapr's injector
//! builds it: the `daprd` container, the projected Sentry token volume, the
//! `dapr.io/*` labels, and `DAPR_HTTP_PORT`, `DAPR_GRPC_PORT` and `APP_PROTOCOL` in every
//! app container that does not set them already. A Pod that is not enabled, or already
//! has a `daprd` container, gets no patch.

use std::collections::BTreeMap;

use json_patch::{AddOperation, Patch, PatchOperation};
use jsonptr::PointerBuf;
use k8s_openapi::api::core::v1::{
    Container, EnvVar, Pod, ProjectedVolumeSource, ServiceAccountTokenProjection, Volume,
    VolumeMount, VolumeProjection,
};
use serde_json::Value;

use crate::annotations::{SidecarAnnotations, Warning};
use crate::container::{self, InjectorSettings};
use crate::{pluggable, volumes};

/// What the injector does with a Pod.
#[derive(Debug)]
pub enum Outcome {
    /// Admitted unchanged, and why.
    Untouched(&'static str),
    /// Admitted with this patch; the warnings go back to the client.
    Patched {
        patch: Patch,
        warnings: Vec<Warning>,
    },
}

/// Why a Pod that asks for a sidecar is refused, as Dapr refuses it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("invalid app id(input: {id}, service: {id}-dapr): {reason}")]
    AppId { id: String, reason: &'static str },
}

/// Dapr checks the app id as the name of the `<app-id>-dapr` Service it becomes part of:
/// an RFC 1123 label of at most 63 characters with the suffix.
fn check_app_id(id: &str) -> Result<(), Refusal> {
    let refuse = |reason| {
        Err(Refusal::AppId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return refuse("the app id is empty");
    }
    let service = format!("{id}-dapr");
    if service.len() > 63 {
        return refuse("must be no more than 63 characters");
    }
    let b = service.as_bytes();
    let label_char = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-';
    if !b.iter().all(label_char) || !b[0].is_ascii_alphanumeric() {
        return refuse(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        );
    }
    Ok(())
}

fn add(path: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(path.iter().copied()),
        value,
    })
}

/// Adds `items` to the list at `path`: the whole list when there is none yet, else one
/// by one at its end.
fn append<T: serde::Serialize>(
    ops: &mut Vec<PatchOperation>,
    path: &[&str],
    missing: bool,
    items: &[T],
) {
    if items.is_empty() {
        return;
    }
    if missing {
        ops.push(add(path, json(&items)));
    } else {
        let mut end = path.to_vec();
        end.push("-");
        for item in items {
            ops.push(add(&end, json(item)));
        }
    }
}

fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The volume with the ServiceAccount token Sentry's KUBERNETES validator checks.
fn token_volume(settings: &InjectorSettings) -> Volume {
    Volume {
        name: container::TOKEN_VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(420),
            sources: Some(vec![VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    audience: Some(format!(
                        "spiffe://{}/ns/{}/dapr-sentry",
                        settings.control_plane_trust_domain, settings.control_plane_namespace
                    )),
                    expiration_seconds: Some(7200),
                    path: "token".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The patch for `pod`, created in `namespace`.
pub fn build(pod: &Pod, namespace: &str, settings: &InjectorSettings) -> Result<Outcome, Refusal> {
    build_with(pod, namespace, settings, &[])
}

/// [`build`], with the Components of the Pod's namespace (as JSON) for
/// `dapr.io/inject-pluggable-components`.
pub fn build_with(
    pod: &Pod,
    namespace: &str,
    settings: &InjectorSettings,
    components: &[Value],
) -> Result<Outcome, Refusal> {
    let empty = BTreeMap::new();
    let annotations_map = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    let (a, mut warnings) = SidecarAnnotations::read(annotations_map);
    if !a.enabled {
        return Ok(Outcome::Untouched("dapr.io/enabled is not true"));
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let has_sidecar = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| c.name == container::CONTAINER_NAME);
    if has_sidecar {
        return Ok(Outcome::Untouched("the Pod already has a daprd container"));
    }
    let app_id = if a.app_id.is_empty() {
        pod.metadata.name.clone().unwrap_or_default()
    } else {
        a.app_id.clone()
    };
    check_app_id(&app_id)?;

    let (mut sidecar, more) = container::sidecar_container(&a, settings, namespace, &app_id);
    warnings.extend(more);
    let pod_volumes = spec.volumes.as_deref().unwrap_or_default();
    let names: Vec<String> = spec.containers.iter().map(|c| c.name.clone()).collect();
    let injected: Vec<Container> = if a.inject_pluggable_components {
        let (found, notes) = pluggable::injectable(&app_id, components);
        for message in notes {
            warnings.push(Warning {
                key: "dapr.io/inject-pluggable-components",
                message,
            });
        }
        found
            .into_iter()
            .filter(|c| {
                let clash = c.name == container::CONTAINER_NAME || names.contains(&c.name);
                if clash {
                    warnings.push(Warning {
                        key: "dapr.io/inject-pluggable-components",
                        message: format!(
                            "the Pod already has a container {}; not injected",
                            c.name
                        ),
                    });
                }
                !clash
            })
            .collect()
    } else {
        Vec::new()
    };
    let plan = volumes::plan(
        &a,
        pod_volumes,
        &names,
        &injected,
        sidecar.volume_mounts.as_deref().unwrap_or_default(),
        &mut warnings,
    );
    sidecar
        .volume_mounts
        .get_or_insert_default()
        .extend(plan.daprd_mounts.iter().cloned());
    sidecar
        .env
        .get_or_insert_default()
        .extend(plan.daprd_env.iter().cloned());
    let mut ops = Vec::new();
    if spec.containers.is_empty() {
        ops.push(add(&["spec", "containers"], Value::Array(Vec::new())));
    }
    if pod.metadata.labels.as_ref().is_none_or(|l| l.is_empty()) {
        ops.push(add(
            &["metadata", "labels"],
            Value::Object(Default::default()),
        ));
    }
    // A volume whose name the Pod already uses is the Pod's, as in Dapr.
    let new_volumes: Vec<Volume> = std::iter::once(token_volume(settings))
        .chain(plan.volumes.iter().cloned())
        .filter(|v| !pod_volumes.iter().any(|p| p.name == v.name))
        .collect();
    if pod_volumes.is_empty() {
        ops.push(add(&["spec", "volumes"], json(&new_volumes)));
    } else {
        for v in &new_volumes {
            ops.push(add(&["spec", "volumes", "-"], json(v)));
        }
    }
    let (list, missing_list) = if a.enable_native_sidecar {
        (
            "initContainers",
            spec.init_containers.as_ref().is_none_or(|c| c.is_empty()),
        )
    } else {
        ("containers", false)
    };
    if missing_list {
        ops.push(add(&["spec", list], Value::Array(Vec::new())));
    }
    for mut c in injected {
        let env = c.env.get_or_insert_default();
        env.retain(|e| !plan.component_env.iter().any(|x| x.name == e.name));
        env.extend(plan.component_env.iter().cloned());
        c.volume_mounts
            .get_or_insert_default()
            .extend(plan.component_mounts.iter().cloned());
        ops.push(add(&["spec", "containers", "-"], json(&c)));
    }
    ops.push(add(&["spec", list, "-"], json(&sidecar)));
    for (label, value) in [
        ("dapr.io/sidecar-injected", "true".to_string()),
        ("dapr.io/app-id", app_id.clone()),
        ("dapr.io/metrics-enabled", a.enable_metrics.to_string()),
    ] {
        ops.push(add(&["metadata", "labels", label], Value::String(value)));
    }
    let app_env = [
        ("DAPR_HTTP_PORT", container::HTTP_PORT.to_string()),
        ("DAPR_GRPC_PORT", a.grpc_port.to_string()),
        ("APP_PROTOCOL", a.app_protocol.clone()),
    ];
    let app_env: Vec<EnvVar> = app_env
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| EnvVar {
            name: (*name).into(),
            value: Some(value.clone()),
            ..Default::default()
        })
        .collect();
    for (i, c) in spec.containers.iter().enumerate() {
        let index = i.to_string();
        let (env, mounts) = if plan.components.contains(&c.name) {
            (&plan.component_env, &plan.component_mounts)
        } else {
            (&app_env, &plan.app_mounts)
        };
        let existing = c.env.as_deref().unwrap_or_default();
        let adding: Vec<&EnvVar> = env
            .iter()
            .filter(|e| !existing.iter().any(|x| x.name == e.name))
            .collect();
        append(
            &mut ops,
            &["spec", "containers", &index, "env"],
            existing.is_empty(),
            &adding,
        );
        let existing = c.volume_mounts.as_deref().unwrap_or_default();
        let adding: Vec<&VolumeMount> = mounts
            .iter()
            .filter(|m| {
                !existing
                    .iter()
                    .any(|x| x.mount_path == m.mount_path || x.name == m.name)
            })
            .collect();
        append(
            &mut ops,
            &["spec", "containers", &index, "volumeMounts"],
            existing.is_empty(),
            &adding,
        );
    }
    Ok(Outcome::Patched {
        patch: Patch(ops),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn pod(annotations: &[(&str, &str)], containers: Vec<Container>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-1".into()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn app(name: &str, env: &[(&str, &str)]) -> Container {
        Container {
            name: name.into(),
            env: (!env.is_empty()).then(|| {
                env.iter()
                    .map(|(k, v)| EnvVar {
                        name: k.to_string(),
                        value: Some(v.to_string()),
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        }
    }

    fn apply(pod: &Pod, patch: &Patch) -> Pod {
        let mut doc = serde_json::to_value(pod).expect("pod json");
        json_patch::patch(&mut doc, &patch.0).expect("the patch applies");
        serde_json::from_value(doc).expect("still a Pod")
    }

    fn patched(p: &Pod) -> (Pod, Vec<Warning>) {
        match build(p, "shop", &InjectorSettings::default()).expect("admitted") {
            Outcome::Patched { patch, warnings } => (apply(p, &patch), warnings),
            Outcome::Untouched(why) => panic!("not patched: {why}"),
        }
    }

    #[test]
    fn an_annotated_pod_gets_the_sidecar_labels_volume_and_env() {
        let p = pod(
            &[("dapr.io/enabled", "true"), ("dapr.io/app-id", "orders")],
            vec![app("web", &[("DAPR_GRPC_PORT", "1")])],
        );
        let (out, warnings) = patched(&p);
        assert!(warnings.is_empty());
        let spec = out.spec.expect("spec");
        let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["web", "daprd"]);
        let labels = out.metadata.labels.expect("labels");
        assert_eq!(labels["dapr.io/sidecar-injected"], "true");
        assert_eq!(labels["dapr.io/app-id"], "orders");
        assert_eq!(labels["dapr.io/metrics-enabled"], "true");
        let volumes = spec.volumes.expect("volumes");
        let audience = volumes[0]
            .projected
            .as_ref()
            .and_then(|p| p.sources.as_ref())
            .and_then(|s| s[0].service_account_token.as_ref())
            .and_then(|t| t.audience.clone());
        assert_eq!(
            audience.as_deref(),
            Some("spiffe://cluster.local/ns/dapr-system/dapr-sentry")
        );
        let env: Vec<(String, String)> = spec.containers[0]
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            env,
            [
                ("DAPR_GRPC_PORT".to_string(), "1".to_string()),
                ("DAPR_HTTP_PORT".to_string(), "3500".to_string()),
                ("APP_PROTOCOL".to_string(), "http".to_string()),
            ],
            "what the app sets itself is kept"
        );
    }

    #[test]
    fn pods_that_do_not_ask_or_already_have_one_are_untouched() {
        let s = InjectorSettings::default();
        let plain = pod(&[], vec![app("web", &[])]);
        assert!(matches!(build(&plain, "ns", &s), Ok(Outcome::Untouched(_))));
        let off = pod(&[("dapr.io/enabled", "false")], vec![app("web", &[])]);
        assert!(matches!(build(&off, "ns", &s), Ok(Outcome::Untouched(_))));
        let once = pod(&[("dapr.io/enabled", "true")], vec![app("web", &[])]);
        let (twice, _) = patched(&once);
        assert!(
            matches!(build(&twice, "ns", &s), Ok(Outcome::Untouched(_))),
            "never injected twice"
        );
    }

    #[test]
    fn an_app_id_that_cannot_name_a_service_is_refused() {
        let s = InjectorSettings::default();
        for bad in ["Orders", "a_b", &"x".repeat(60)] {
            let p = pod(
                &[("dapr.io/enabled", "true"), ("dapr.io/app-id", bad)],
                vec![],
            );
            let err = build(&p, "ns", &s).expect_err("refused");
            assert!(
                err.to_string().starts_with(&format!(
                    "invalid app id(input: {bad}, service: {bad}-dapr)"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn native_sidecars_go_to_init_containers() {
        let p = pod(
            &[
                ("dapr.io/enabled", "true"),
                ("dapr.io/enable-native-sidecar", "true"),
            ],
            vec![app("web", &[])],
        );
        let (out, _) = patched(&p);
        let spec = out.spec.expect("spec");
        let init = spec.init_containers.expect("init containers");
        assert_eq!(init[0].name, "daprd");
        assert_eq!(init[0].restart_policy.as_deref(), Some("Always"));
        assert_eq!(spec.containers.len(), 1);
    }

    #[test]
    fn pluggable_components_are_injected_sharing_the_socket_folder() {
        let components = [serde_json::json!({
            "metadata": {"name": "my-store", "annotations": {
                "dapr.io/component-container":
                    r#"{"image": "pc:1", "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}"#,
            }},
            "scopes": ["web"],
        })];
        let p = pod(
            &[
                ("dapr.io/enabled", "true"),
                ("dapr.io/app-id", "web"),
                ("dapr.io/inject-pluggable-components", "true"),
            ],
            vec![app("web", &[])],
        );
        let Outcome::Patched { patch, warnings } =
            build_with(&p, "shop", &InjectorSettings::default(), &components).expect("admitted")
        else {
            panic!("not patched");
        };
        assert!(warnings.is_empty(), "{warnings:?}");
        let out = apply(&p, &patch);
        let spec = out.spec.expect("spec");
        let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["web", "my-store", "daprd"]);
        let pc = &spec.containers[1];
        let folder = |c: &Container| {
            c.env
                .iter()
                .flatten()
                .find(|e| e.name == "DAPR_COMPONENT_SOCKETS_FOLDER")
                .and_then(|e| e.value.clone())
        };
        assert_eq!(folder(pc).as_deref(), Some("/tmp/dapr-components-sockets"));
        assert_eq!(folder(&spec.containers[2]), folder(pc));
        let volumes: Vec<&str> = spec
            .volumes
            .iter()
            .flatten()
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(
            volumes,
            [
                "dapr-identity-token",
                "dapr-components-unix-domain-socket",
                "scratch"
            ]
        );
        // Without the annotation, the Components are not looked at.
        let plain = pod(&[("dapr.io/enabled", "true")], vec![app("web", &[])]);
        let Ok(Outcome::Patched { patch, .. }) =
            build_with(&plain, "shop", &InjectorSettings::default(), &components)
        else {
            panic!("not patched");
        };
        assert_eq!(
            apply(&plain, &patch).spec.expect("spec").containers.len(),
            2
        );
    }

    /// Every shape of Pod in a small space (0 to 3 containers, each with or without its own
    /// env and Dapr's variables, labels or not, volumes or not): the patch applies cleanly,
    /// adds exactly one sidecar, sets every app container's variables once, and a second
    /// pass leaves the result alone.
    #[test]
    fn every_pod_shape_patches_cleanly_and_once() {
        let s = InjectorSettings::default();
        for n in 0..=3usize {
            for env_mask in 0..(1u32 << n) {
                for dapr_env_mask in 0..(1u32 << n) {
                    for labels in [false, true] {
                        for volumes in [false, true] {
                            let containers = (0..n)
                                .map(|i| {
                                    let mut env = Vec::new();
                                    if env_mask & (1 << i) != 0 {
                                        env.push(("MINE", "1"));
                                    }
                                    if dapr_env_mask & (1 << i) != 0 {
                                        env.push(("DAPR_HTTP_PORT", "7"));
                                    }
                                    app(&format!("c{i}"), &env)
                                })
                                .collect();
                            let mut p = pod(&[("dapr.io/enabled", "true")], containers);
                            if labels {
                                p.metadata.labels =
                                    Some([("app".to_string(), "web".to_string())].into());
                            }
                            if volumes && let Some(spec) = p.spec.as_mut() {
                                spec.volumes = Some(vec![Volume {
                                    name: "data".into(),
                                    ..Default::default()
                                }]);
                            }
                            let Outcome::Patched { patch, .. } =
                                build(&p, "ns", &s).expect("admitted")
                            else {
                                panic!("not patched");
                            };
                            let out = apply(&p, &patch);
                            let spec = out.spec.clone().expect("spec");
                            assert_eq!(spec.containers.len(), n + 1);
                            assert_eq!(
                                spec.containers.iter().filter(|c| c.name == "daprd").count(),
                                1
                            );
                            for c in spec.containers.iter().filter(|c| c.name != "daprd") {
                                for var in ["DAPR_HTTP_PORT", "DAPR_GRPC_PORT", "APP_PROTOCOL"] {
                                    let count =
                                        c.env.iter().flatten().filter(|e| e.name == var).count();
                                    assert_eq!(count, 1, "{var} in {}", c.name);
                                }
                            }
                            assert_eq!(
                                spec.volumes.as_ref().map(Vec::len),
                                Some(usize::from(volumes) + 1)
                            );
                            if labels {
                                let l = out.metadata.labels.as_ref().expect("labels");
                                assert_eq!(l.get("app").map(String::as_str), Some("web"));
                            }
                            assert!(matches!(build(&out, "ns", &s), Ok(Outcome::Untouched(_))));
                        }
                    }
                }
            }
        }
    }
}
