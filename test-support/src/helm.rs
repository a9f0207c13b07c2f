//! `helm` for the chart tests: `HELM_BIN` (scripts/test.sh builds it with
//! tests/k8s/build-helm.sh), with its cache and configuration kept out of `$HOME`.

use std::process::{Command, Output};

/// Runs helm with `args`; the release commands reach the cluster of `KUBECONFIG`.
pub fn helm(args: &[&str]) -> Output {
    let bin = std::env::var_os("HELM_BIN").expect(
        "HELM_BIN must name a helm binary: scripts/test.sh builds one (tests/k8s/build-helm.sh)",
    );
    let home = std::env::temp_dir().join("rdapr-helm");
    Command::new(bin)
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("run helm")
}

/// Runs helm and returns its output (stdout then stderr), panicking when it fails.
pub fn helm_ok(args: &[&str]) -> String {
    let out = helm(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "helm {args:?} failed:\n{text}");
    text
}
