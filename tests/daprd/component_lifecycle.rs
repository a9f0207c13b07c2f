//! The component lifecycle in the real binary: secret stores first and `secretKeyRef`s
//! resolved through them, and standalone hot reload with the `HotReload` feature.

use std::path::Path;
use std::time::{Duration, Instant};

use test_support::daprd::{component, daprd, resources};

/// `(name, type, capabilities)` of every listed component, sorted by name.
async fn listed(d: &test_support::daprd::Sidecar) -> Vec<(String, String, Vec<String>)> {
    let meta = d.metadata().await;
    let mut v: Vec<_> = meta["components"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let caps = c["capabilities"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            (
                c["name"].as_str().unwrap_or("").to_string(),
                c["type"].as_str().unwrap_or("").to_string(),
                caps,
            )
        })
        .collect();
    v.sort();
    v
}

async fn save(d: &test_support::daprd::Sidecar, store: &str, key: &str, value: &str) -> u16 {
    reqwest::Client::new()
        .post(d.url(&format!("/v1.0/state/{store}")))
        .json(&serde_json::json!([{"key": key, "value": value}]))
        .send()
        .await
        .expect("save")
        .status()
        .as_u16()
}

async fn read(d: &test_support::daprd::Sidecar, store: &str, key: &str) -> (u16, String) {
    let r = reqwest::get(d.url(&format!("/v1.0/state/{store}/{key}")))
        .await
        .expect("get");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// Polls `check` for up to 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn secret_store(name: &str, file: &Path, multi: bool) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: secretstores.local.file\n  version: v1\n  metadata:\n  - name: secretsFile\n    value: {}\n  - name: multiValued\n    value: \"{multi}\"\n",
        file.display()
    )
}

#[tokio::test]
async fn secret_key_refs_resolve_through_the_named_secret_store_loaded_first() {
    let work = tempfile::tempdir().expect("tempdir");
    let db = work.path().join("from-secret.db");
    let secrets = work.path().join("secrets.json");
    std::fs::write(
        &secrets,
        serde_json::json!({"sqlite": {"path": db.display().to_string()}}).to_string(),
    )
    .expect("secrets file");
    // The dependent sorts before its secret store: secret stores still load first.
    let dependent = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: vaulted\nauth:\n  secretStore: localsecrets\nspec:\n  type: state.sqlite\n  version: v1\n  metadata:\n  - name: connectionString\n    secretKeyRef:\n      name: sqlite\n      key: path\n";
    let dir = resources(&[
        ("a-dependent.yaml", dependent),
        (
            "z-secrets.yaml",
            &secret_store("localsecrets", &secrets, true),
        ),
    ]);
    let d = daprd().resources(dir.path()).start().await;
    assert_eq!(save(&d, "vaulted", "k", "v").await, 204, "{}", d.log());
    assert_eq!(read(&d, "vaulted", "k").await, (200, "\"v\"".to_string()));
    // The value came from the secret: the database is the file it names.
    assert!(
        db.exists(),
        "no database at the secret's path; log:\n{}",
        d.log()
    );
    let components = listed(&d).await;
    assert_eq!(components[0].0, "localsecrets");
    assert_eq!(components[0].1, "secretstores.local.file");
    assert_eq!(components[0].2, ["MULTIPLE_KEY_VALUES_PER_SECRET"]);
    assert_eq!(components[1].0, "vaulted");
    let log = d.log();
    let (store_at, dependent_at) = (
        log.find("Component loaded: localsecrets"),
        log.find("Component loaded: vaulted"),
    );
    assert!(
        matches!((store_at, dependent_at), (Some(a), Some(b)) if a < b),
        "{log}"
    );
}

#[tokio::test]
async fn an_unknown_type_names_the_file_it_came_from() {
    let dir = resources(&[("weird.yaml", &component("x", "state.nosuch", &[]))]);
    let mut d = daprd().resources(dir.path()).spawn();
    assert!(!d.wait_exit(Duration::from_secs(10)).await.success());
    let log = d.log();
    assert!(
        log.contains("couldn't find state store state.nosuch/v1"),
        "{log}"
    );
    assert!(log.contains("weird.yaml (document 0)"), "{log}");
}

fn hot_reload_config(dir: &Path) -> String {
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: hot\nspec:\n  features:\n  - name: HotReload\n    enabled: true\n",
    )
    .expect("config");
    path.display().to_string()
}

#[tokio::test]
async fn with_hot_reload_components_follow_their_files() {
    let cfg_dir = tempfile::tempdir().expect("tempdir");
    let dir = resources(&[("a.yaml", &component("a", "state.in-memory", &[]))]);
    let d = daprd()
        .resources(dir.path())
        .arg("--config")
        .arg(hot_reload_config(cfg_dir.path()))
        .start()
        .await;
    assert_eq!(save(&d, "a", "k", "1").await, 204);

    // Added.
    std::fs::write(
        dir.path().join("b.yaml"),
        component("b", "state.in-memory", &[]),
    )
    .expect("write b");
    eventually("b to load", || async {
        save(&d, "b", "k", "2").await == 204
    })
    .await;

    // Changed: a new store replaces the old one, whose values are gone with it.
    let sqlite = dir.path().join("a.db");
    std::fs::write(
        dir.path().join("a.yaml"),
        component(
            "a",
            "state.sqlite",
            &[("connectionString", &sqlite.display().to_string())],
        ),
    )
    .expect("rewrite a");
    eventually("a to become sqlite", || async {
        listed(&d)
            .await
            .iter()
            .any(|(n, t, _)| n == "a" && t == "state.sqlite")
    })
    .await;
    assert_eq!(read(&d, "a", "k").await.0, 204);
    assert_eq!(save(&d, "a", "k", "3").await, 204);

    // A broken change keeps the version that works.
    std::fs::write(
        dir.path().join("a.yaml"),
        component("a", "state.nosuch", &[]),
    )
    .expect("break a");
    eventually("the failed reload to be logged", || async {
        d.log()
            .contains("couldn't find state store state.nosuch/v1")
    })
    .await;
    assert_eq!(read(&d, "a", "k").await, (200, "\"3\"".to_string()));

    // Removed.
    std::fs::remove_file(dir.path().join("b.yaml")).expect("remove b");
    eventually("b to go", || async { read(&d, "b", "k").await.0 == 400 }).await;
    let (_, body) = read(&d, "b", "k").await;
    assert!(body.contains("ERR_STATE_STORE_NOT_FOUND"), "{body}");
    let names: Vec<String> = listed(&d).await.into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(names, ["a"]);
}

#[tokio::test]
async fn without_hot_reload_files_are_read_once() {
    let dir = resources(&[("a.yaml", &component("a", "state.in-memory", &[]))]);
    let d = daprd().resources(dir.path()).start().await;
    std::fs::write(
        dir.path().join("b.yaml"),
        component("b", "state.in-memory", &[]),
    )
    .expect("write b");
    // Long enough for a watcher to have seen it several times over.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(read(&d, "b", "k").await.0, 400);
    assert_eq!(listed(&d).await.len(), 1);
}
