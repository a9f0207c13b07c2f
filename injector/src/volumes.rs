//! The volumes and mounts an injected Pod gains besides the Sentry token, as Dapr's
//! injector adds them: the Pod's own volumes the annotations mount into `daprd`
//! (`dapr.io/volume-mounts`, read-only, and `dapr.io/volume-mounts-rw`), the UNIX socket
//! folder shared with the app (`dapr.io/unix-domain-socket-path`), and the socket folder
//! shared with pluggable-component containers (`dapr.io/pluggable-components`,
//! `dapr.io/pluggable-components-sockets-folder`, and the containers injected for
//! `dapr.io/inject-pluggable-components`). Pure: the patch builder applies it.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, EmptyDirVolumeSource, EnvVar, Volume, VolumeMount};

use crate::annotations::{SidecarAnnotations, Warning};

/// The socket folder inside `daprd` when the app talks to it over UNIX sockets.
pub const UDS_DAPRD_PATH: &str = "/var/run/dapr-sockets";
const UDS_VOLUME: &str = "dapr-unix-domain-socket";
const COMPONENTS_VOLUME: &str = "dapr-components-unix-domain-socket";
const COMPONENTS_DEFAULT_FOLDER: &str = "/tmp/dapr-components-sockets";
/// Tells `daprd` and the component containers where the component sockets are.
pub const COMPONENTS_FOLDER_ENV: &str = "DAPR_COMPONENT_SOCKETS_FOLDER";

/// What the Pod gains, container by container.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// New Pod volumes (never one whose name the Pod already uses).
    pub volumes: Vec<Volume>,
    pub daprd_mounts: Vec<VolumeMount>,
    pub daprd_env: Vec<EnvVar>,
    /// Mounts for every app container (not the component containers).
    pub app_mounts: Vec<VolumeMount>,
    /// Names of the Pod's containers that are pluggable components.
    pub components: BTreeSet<String>,
    pub component_mounts: Vec<VolumeMount>,
    pub component_env: Vec<EnvVar>,
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

fn empty_dir(name: &str, medium: Option<&str>) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: medium.map(str::to_string),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `name:path,name:path` as Dapr splits it: a pair that is not exactly two parts is
/// skipped (with a warning here), as is one naming a volume the Pod does not have.
fn user_mounts(
    text: &str,
    key: &'static str,
    read_only: bool,
    pod_volumes: &BTreeSet<&str>,
    warnings: &mut Vec<Warning>,
) -> Vec<VolumeMount> {
    let mut out = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let parts: Vec<&str> = pair.split(':').collect();
        let [name, path] = parts.as_slice() else {
            warnings.push(Warning {
                key,
                message: format!("{pair:?} is not volume:path; skipped"),
            });
            continue;
        };
        if !pod_volumes.contains(name) {
            warnings.push(Warning {
                key,
                message: format!("the Pod has no volume {name:?}; skipped"),
            });
            continue;
        }
        if !path.starts_with('/') {
            warnings.push(Warning {
                key,
                message: format!("{path:?} is not an absolute path; skipped"),
            });
            continue;
        }
        out.push(mount(name, path, read_only));
    }
    out
}

/// The plan for a Pod with `pod_volumes` and `containers`, whose sidecar already mounts
/// `daprd_taken` (the token).
pub fn plan(
    a: &SidecarAnnotations,
    pod_volumes: &[Volume],
    containers: &[String],
    injected: &[Container],
    daprd_taken: &[VolumeMount],
    warnings: &mut Vec<Warning>,
) -> Plan {
    let existing: BTreeSet<&str> = pod_volumes.iter().map(|v| v.name.as_str()).collect();
    let mut p = Plan::default();
    let mut daprd: Vec<VolumeMount> = daprd_taken.to_vec();
    let mut add_daprd = |m: VolumeMount, key: &'static str, warnings: &mut Vec<Warning>| {
        if daprd
            .iter()
            .any(|d| d.mount_path == m.mount_path || d.name == m.name)
        {
            warnings.push(Warning {
                key,
                message: format!(
                    "{} at {} clashes with another mount of the sidecar; skipped",
                    m.name, m.mount_path
                ),
            });
            return None;
        }
        daprd.push(m.clone());
        Some(m)
    };
    for (text, key, read_only) in [
        (&a.volume_mounts, "dapr.io/volume-mounts", true),
        (&a.volume_mounts_rw, "dapr.io/volume-mounts-rw", false),
    ] {
        for m in user_mounts(text, key, read_only, &existing, warnings) {
            if let Some(m) = add_daprd(m, key, warnings) {
                p.daprd_mounts.push(m);
            }
        }
    }
    let new_volume = |v: Volume, p: &mut Plan| {
        if !existing.contains(v.name.as_str()) {
            p.volumes.push(v);
        }
    };
    let uds = &a.unix_domain_socket_path;
    if !uds.is_empty() {
        new_volume(empty_dir(UDS_VOLUME, Some("Memory")), &mut p);
        if let Some(m) = add_daprd(
            mount(UDS_VOLUME, UDS_DAPRD_PATH, false),
            "dapr.io/unix-domain-socket-path",
            warnings,
        ) {
            p.daprd_mounts.push(m);
        }
        p.app_mounts.push(mount(UDS_VOLUME, uds, false));
    }
    p.components = a
        .pluggable_components
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty() && containers.iter().any(|c| c == n))
        .map(str::to_string)
        .collect();
    if !p.components.is_empty() || !injected.is_empty() {
        let folder = if a.pluggable_components_sockets_folder.is_empty() {
            COMPONENTS_DEFAULT_FOLDER
        } else {
            &a.pluggable_components_sockets_folder
        };
        new_volume(empty_dir(COMPONENTS_VOLUME, None), &mut p);
        let shared = mount(COMPONENTS_VOLUME, folder, false);
        let env = EnvVar {
            name: COMPONENTS_FOLDER_ENV.into(),
            value: Some(folder.to_string()),
            ..Default::default()
        };
        if let Some(m) = add_daprd(shared.clone(), "dapr.io/pluggable-components", warnings) {
            p.daprd_mounts.push(m);
            p.daprd_env.push(env.clone());
        }
        p.component_mounts.push(shared);
        p.component_env.push(env);
    }
    // An injected container's own mounts get empty directories, as in Dapr.
    let mut named: BTreeSet<String> = existing.iter().map(|n| n.to_string()).collect();
    named.extend(p.volumes.iter().map(|v| v.name.clone()));
    for c in injected {
        for m in c.volume_mounts.iter().flatten() {
            if named.insert(m.name.clone()) {
                p.volumes.push(empty_dir(&m.name, None));
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> SidecarAnnotations {
        crate::annotations::read_pairs(pairs).0
    }

    fn volume(name: &str) -> Volume {
        Volume {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_pods_volumes_are_mounted_read_only_or_read_write_and_unknown_ones_skipped() {
        let a = annotations(&[
            ("dapr.io/volume-mounts", "certs:/mnt/certs, nope:/x, bad"),
            ("dapr.io/volume-mounts-rw", "data:/mnt/data,data2:relative"),
        ]);
        let mut warnings = Vec::new();
        let p = plan(
            &a,
            &[volume("certs"), volume("data"), volume("data2")],
            &[],
            &[],
            &[],
            &mut warnings,
        );
        assert_eq!(
            p.daprd_mounts,
            [
                mount("certs", "/mnt/certs", true),
                mount("data", "/mnt/data", false)
            ]
        );
        let said: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(said.len(), 3, "{said:?}");
        assert!(said[0].contains("no volume \"nope\""));
        assert!(said[1].contains("\"bad\" is not volume:path"));
        assert!(said[2].contains("not an absolute path"));
        assert!(p.volumes.is_empty());
    }

    #[test]
    fn a_unix_socket_path_shares_a_memory_volume_between_app_and_sidecar() {
        let a = annotations(&[("dapr.io/unix-domain-socket-path", "/tmp/dapr")]);
        let p = plan(&a, &[], &["app".into()], &[], &[], &mut Vec::new());
        assert_eq!(p.volumes, [empty_dir(UDS_VOLUME, Some("Memory"))]);
        assert_eq!(
            p.daprd_mounts,
            [mount(UDS_VOLUME, "/var/run/dapr-sockets", false)]
        );
        assert_eq!(p.app_mounts, [mount(UDS_VOLUME, "/tmp/dapr", false)]);
    }

    #[test]
    fn pluggable_component_containers_share_the_socket_folder_with_the_sidecar() {
        let a = annotations(&[("dapr.io/pluggable-components", "redis-pc, absent")]);
        let containers = ["app".to_string(), "redis-pc".to_string()];
        let p = plan(&a, &[], &containers, &[], &[], &mut Vec::new());
        assert_eq!(p.components, BTreeSet::from(["redis-pc".to_string()]));
        assert_eq!(p.volumes, [empty_dir(COMPONENTS_VOLUME, None)]);
        let shared = mount(COMPONENTS_VOLUME, "/tmp/dapr-components-sockets", false);
        assert_eq!(p.daprd_mounts, std::slice::from_ref(&shared));
        assert_eq!(p.component_mounts, [shared]);
        assert_eq!(p.daprd_env[0].name, COMPONENTS_FOLDER_ENV);
        assert_eq!(
            p.component_env[0].value.as_deref(),
            Some("/tmp/dapr-components-sockets")
        );

        let a = annotations(&[
            ("dapr.io/pluggable-components", "redis-pc"),
            ("dapr.io/pluggable-components-sockets-folder", "/sockets"),
        ]);
        let p = plan(&a, &[], &containers, &[], &[], &mut Vec::new());
        assert_eq!(p.daprd_mounts[0].mount_path, "/sockets");
    }

    #[test]
    fn a_mount_that_clashes_with_the_sidecars_own_is_skipped() {
        let a = annotations(&[(
            "dapr.io/volume-mounts",
            "data:/var/run/secrets/dapr.io/sentrytoken",
        )]);
        let token = mount(
            "dapr-identity-token",
            "/var/run/secrets/dapr.io/sentrytoken",
            true,
        );
        let mut warnings = Vec::new();
        let p = plan(&a, &[volume("data")], &[], &[], &[token], &mut warnings);
        assert!(p.daprd_mounts.is_empty());
        assert!(warnings[0].to_string().contains("clashes"));
    }
}
