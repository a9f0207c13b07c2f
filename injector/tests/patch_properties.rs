//! Property tests of the pure patch builder: for any Pod (any containers, init
//! containers, env, volumes, labels, annotations with any of Dapr's keys and any values),
//! `build` either refuses cleanly, leaves the Pod alone, or returns a JSON Patch that
//! applies to the Pod as the API server applies it, yields a Pod again, adds exactly one
//! `daprd`, and leaves nothing to do on a second pass.

use std::collections::BTreeMap;

use injector::annotations::KEYS;
use injector::container::InjectorSettings;
use injector::patch::{Outcome, build_with};
use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, PodSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use proptest::prelude::*;

/// Values an annotation may hold: Dapr's kinds (numbers, booleans, names, lists,
/// quantities) and garbage.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("true".to_string()),
        Just("false".to_string()),
        Just("yes".to_string()),
        Just("8080".to_string()),
        Just("-1".to_string()),
        Just("99999999999".to_string()),
        Just("128Mi".to_string()),
        Just("0.5".to_string()),
        Just("grpc".to_string()),
        Just("a,b=c;d".to_string()),
        Just("\"quoted\"".to_string()),
        Just("data:/mnt/data,logs:/var/log".to_string()),
        Just("data:/var/run/secrets/dapr.io/sentrytoken".to_string()),
        Just("/tmp/dapr-sockets".to_string()),
        Just("pc,app".to_string()),
        "[a-z0-9-]{0,70}",
        any::<String>(),
    ]
}

fn annotations() -> impl Strategy<Value = BTreeMap<String, String>> {
    let key = prop_oneof![
        4 => proptest::sample::select(KEYS.to_vec()).prop_map(str::to_string),
        1 => Just("dapr.io/inject-pluggable-components".to_string()),
        1 => "[a-z./-]{1,20}",
    ];
    (
        prop::collection::btree_map(key, value(), 0..12),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(mut map, enabled)| {
            if enabled {
                map.insert("dapr.io/enabled".into(), "true".into());
            }
            map
        })
}

fn env() -> impl Strategy<Value = Vec<EnvVar>> {
    let name = prop_oneof![
        Just("DAPR_HTTP_PORT".to_string()),
        Just("DAPR_GRPC_PORT".to_string()),
        Just("APP_PROTOCOL".to_string()),
        "[A-Z_]{1,10}",
    ];
    prop::collection::vec(
        (name, proptest::option::of("[a-z0-9]{0,5}")).prop_map(|(name, value)| EnvVar {
            name,
            value,
            ..Default::default()
        }),
        0..4,
    )
}

fn container() -> impl Strategy<Value = Container> {
    let name = prop_oneof![
        8 => "[a-z][a-z0-9-]{0,10}",
        1 => Just("pc".to_string()),
        1 => Just("daprd".to_string()),
    ];
    (name, proptest::option::of(env())).prop_map(|(name, env)| Container {
        name,
        image: Some("example/app:1".into()),
        env,
        ..Default::default()
    })
}

fn pod() -> impl Strategy<Value = Pod> {
    let volume = prop_oneof![
        "[a-z][a-z0-9-]{0,10}",
        Just("data".to_string()),
        Just("logs".to_string()),
        Just("dapr-identity-token".to_string()),
        Just("dapr-unix-domain-socket".to_string()),
    ]
    .prop_map(|name| Volume {
        name,
        ..Default::default()
    });
    (
        annotations(),
        proptest::option::of(prop::collection::btree_map(
            "[a-z./]{1,12}",
            "[a-z0-9]{0,6}",
            0..3,
        )),
        prop::collection::vec(container(), 0..4),
        proptest::option::of(prop::collection::vec(container(), 0..2)),
        proptest::option::of(prop::collection::vec(volume, 0..3)),
        proptest::option::of("[a-z][a-z0-9-]{0,12}"),
        proptest::option::of("[a-z][a-z0-9-]{0,12}"),
    )
        .prop_map(
            |(annotations, labels, containers, init, volumes, name, service_account)| Pod {
                metadata: ObjectMeta {
                    name,
                    annotations: Some(annotations),
                    labels,
                    ..Default::default()
                },
                spec: Some(PodSpec {
                    containers,
                    init_containers: init,
                    volumes,
                    service_account_name: service_account,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
}

fn daprd_count(p: &Pod) -> usize {
    p.spec
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .filter(|c| c.name == "daprd")
        .count()
}

/// What the API server checks of what the patch made: volume names unique, and in each
/// container mounts of existing volumes at distinct paths and env names once from us.
fn valid(before: &Pod, after: &Pod) -> Result<(), String> {
    let spec = after.spec.as_ref().ok_or("no spec")?;
    let volumes: Vec<&str> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    let before_volumes: Vec<&str> = before
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .map(|v| v.name.as_str())
        .collect();
    let mut unique = volumes.clone();
    unique.sort_unstable();
    unique.dedup();
    let mut before_unique = before_volumes.clone();
    before_unique.sort_unstable();
    before_unique.dedup();
    // Duplicates the Pod came with are its own; the patch adds none.
    if volumes.len() - unique.len() != before_volumes.len() - before_unique.len() {
        return Err(format!("duplicate volumes {volumes:?}"));
    }
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let mounts = c.volume_mounts.as_deref().unwrap_or_default();
        let mut paths: Vec<&str> = mounts.iter().map(|m| m.mount_path.as_str()).collect();
        let n = paths.len();
        paths.sort_unstable();
        paths.dedup();
        if paths.len() != n {
            return Err(format!("{}: duplicate mount paths {mounts:?}", c.name));
        }
        if let Some(m) = mounts.iter().find(|m| !volumes.contains(&m.name.as_str())) {
            return Err(format!("{}: mount of a missing volume {}", c.name, m.name));
        }
    }
    Ok(())
}

fn app_containers(p: &Pod) -> Vec<String> {
    p.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .filter(|c| c.name != "daprd")
        .map(|c| c.name.clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_pod_patches_cleanly_or_is_refused_cleanly(p in pod()) {
        let settings = InjectorSettings::default();
        // Components of the namespace, for dapr.io/inject-pluggable-components.
        let components = [
            serde_json::json!({"metadata": {"name": "pc", "annotations": {
                "dapr.io/component-container": r#"{"image": "pc:1", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}"#,
            }}}),
            serde_json::json!({"metadata": {"name": "broken", "annotations": {
                "dapr.io/component-container": "{",
            }}}),
        ];
        match build_with(&p, "shop", &settings, &components) {
            Err(refusal) => prop_assert!(!refusal.to_string().is_empty()),
            Ok(Outcome::Untouched(why)) => prop_assert!(!why.is_empty()),
            Ok(Outcome::Patched { patch, warnings }) => {
                for w in &warnings {
                    prop_assert!(w.key.starts_with("dapr.io/"));
                }
                let mut doc = serde_json::to_value(&p).expect("pod json");
                let applied = json_patch::patch(&mut doc, &patch.0);
                prop_assert!(applied.is_ok(), "{applied:?} for {patch:?}");
                let out: Result<Pod, _> = serde_json::from_value(doc);
                prop_assert!(out.is_ok(), "not a Pod after the patch: {out:?}");
                let out = out.expect("checked");
                let checked = valid(&p, &out);
                prop_assert!(checked.is_ok(), "{checked:?}");
                prop_assert_eq!(daprd_count(&p), 0);
                prop_assert_eq!(daprd_count(&out), 1);
                // The app's own containers are all still there, first and in order.
                let before = app_containers(&p);
                let after = app_containers(&out);
                prop_assert_eq!(&after[..before.len().min(after.len())], &before[..]);
                // Injected once: a second pass has nothing to do.
                let again = build_with(&out, "shop", &settings, &components);
                prop_assert!(matches!(again, Ok(Outcome::Untouched(_))), "{again:?}");
            }
        }
    }
}
