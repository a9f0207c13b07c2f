//! One way to find each binary of the workspace: build it (a no-op when it is fresh) into
//! the target directory this test runs from, so that no test can run a stale or missing
//! `daprd`, whichever crate's tests are run and however they are filtered.
//!
//! The binaries are built exactly as `cargo build --workspace` builds them (every member,
//! features unified across the workspace, no dev-dependencies): the product as shipped,
//! and the same build `scripts/test.sh` has already made, so in a full run this costs one
//! no-op cargo call. Any other selection (one package, or `--bins`, which leaves out the
//! library-only members) unifies features differently and compiles every dependency a
//! second time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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
/// Every binary is built by the first call in a test process.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let dir = profile_dir();
    // `scripts/test.sh` builds the workspace itself, then says so: no second cargo call.
    if std::env::var_os(BUILT_BY_RUNNER).is_none() {
        BUILT.get_or_init(|| build_all(&dir));
    }
    let path = dir.join(name);
    assert!(path.exists(), "no binary {name} in {}", dir.display());
    path
}

/// Set by a test runner that has just run `cargo build --workspace` into this target dir.
const BUILT_BY_RUNNER: &str = "RDAPR_BINARIES_BUILT";

fn build_all(dir: &Path) {
    let target_dir = dir.parent().expect("target dir");
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // What `cargo test` put into this process's environment (package variables, the
    // library path) would reach build scripts and look like a change to them.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if (key.starts_with("CARGO_") && key != "CARGO_HOME") || key == "OUT_DIR" {
            cargo.env_remove(key.as_ref());
        }
    }
    cargo
        .env_remove("LD_LIBRARY_PATH")
        .args(["build", "--quiet", "--workspace"])
        .env("CARGO_TARGET_DIR", target_dir);
    if dir.file_name().and_then(|n| n.to_str()) == Some("release") {
        cargo.arg("--release");
    }
    let status = cargo
        .status()
        .unwrap_or_else(|e| panic!("running cargo to build the binaries: {e}"));
    assert!(
        status.success(),
        "cargo could not build the workspace's binaries"
    );
}
