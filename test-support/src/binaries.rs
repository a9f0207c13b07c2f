//! One way to find each binary of the workspace: build it (a no-op when it is fresh) into
//! the target directory this test runs from, so that no test can run a stale or missing
//! `daprd`, whichever crate's tests are run and however they are filtered.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The package each binary is built from.
const PACKAGES: &[(&str, &str)] = &[
    ("daprd", "daprd"),
    ("operator", "operator"),
    ("sentry", "sentry"),
];

/// The profile directory the running test binary lives in (`target/debug`), from its
/// own path (`target/debug/deps/<test>-<hash>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    exe.parent()
        .and_then(Path::parent)
        .expect("a test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// The path of binary `name`, built first if it is missing or older than its sources.
/// Built once per test process.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let package = PACKAGES
        .iter()
        .find(|(bin, _)| *bin == name)
        .map(|(_, package)| *package)
        .unwrap_or_else(|| panic!("no package is known to build binary {name}"));
    let dir = profile_dir();
    let target_dir = dir.parent().expect("target dir");
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .args(["build", "--quiet", "-p", package, "--bin", name])
        .env("CARGO_TARGET_DIR", target_dir);
    if dir.file_name().and_then(|n| n.to_str()) == Some("release") {
        cargo.arg("--release");
    }
    let status = cargo
        .status()
        .unwrap_or_else(|e| panic!("running cargo to build {name}: {e}"));
    assert!(status.success(), "cargo could not build {name}");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} missing after building it",
        path.display()
    );
    built.insert(name.to_string(), path.clone());
    path
}
