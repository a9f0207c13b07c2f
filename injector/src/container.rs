//! The `daprd` container Dapr's injector adds to a Pod, as a pure function of the Pod's
//! annotations and the injector's own settings: Dapr's arguments in Dapr's order, its
//! ports, environment, probes, security context and resources.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    ObjectFieldSelector, Probe, ResourceRequirements, SeccompProfile, SecretKeySelector,
    SecurityContext, TCPSocketAction, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::annotations::{SidecarAnnotations, Warning};

/// The sidecar container's name; a Pod that has one is never injected again.
pub const CONTAINER_NAME: &str = "daprd";
/// The sidecar's HTTP API port and its public (health) port, fixed as in Dapr.
pub const HTTP_PORT: i32 = 3500;
pub const PUBLIC_PORT: i32 = 3501;
/// Where the projected ServiceAccount token for Sentry is mounted.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/dapr.io/sentrytoken";
/// The volume holding that token.
pub const TOKEN_VOLUME: &str = "dapr-identity-token";

/// What the injector itself is configured with (its flags, environment and the chart's
/// values), the same for every Pod it patches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectorSettings {
    /// `SIDECAR_IMAGE`: used unless a Pod names its own.
    pub sidecar_image: String,
    /// `SIDECAR_IMAGE_PULL_POLICY`; empty: Kubernetes' default.
    pub image_pull_policy: String,
    /// The namespace the control plane runs in.
    pub control_plane_namespace: String,
    /// The control plane's SPIFFE trust domain.
    pub control_plane_trust_domain: String,
    /// The PEM trust anchors sidecars check Sentry's and peers' certificates against.
    pub trust_anchors: String,
    pub operator_address: String,
    pub sentry_address: String,
    /// Placement, unless the Pod names its own.
    pub placement_address: String,
    pub mtls_enabled: bool,
    /// `SIDECAR_RUN_AS_NON_ROOT` and friends: the sidecar's security context.
    pub run_as_non_root: bool,
    pub read_only_root_filesystem: bool,
    pub drop_all_capabilities: bool,
    /// `DAPR_HOST_IP` from the Pod's IP (`ENABLE_K8S_DOWNWARD_APIS`).
    pub downward_apis: bool,
}

impl Default for InjectorSettings {
    /// Dapr's chart defaults for a control plane in `dapr-system`.
    fn default() -> Self {
        let ns = "dapr-system";
        Self {
            sidecar_image: "ghcr.io/dapr/daprd:latest".into(),
            image_pull_policy: String::new(),
            control_plane_namespace: ns.into(),
            control_plane_trust_domain: "cluster.local".into(),
            trust_anchors: String::new(),
            operator_address: format!("dapr-api.{ns}.svc.cluster.local:443"),
            sentry_address: format!("dapr-sentry.{ns}.svc.cluster.local:443"),
            placement_address: format!("dapr-placement-server.{ns}.svc.cluster.local:50005"),
            mtls_enabled: true,
            run_as_non_root: true,
            read_only_root_filesystem: true,
            drop_all_capabilities: false,
            downward_apis: false,
        }
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn env_from_field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn env_from_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn port(name: &str, number: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: number,
        ..Default::default()
    }
}

/// A command line being built.
struct Line(Vec<String>);

impl Line {
    fn flag(&mut self, flag: &str) {
        self.0.push(flag.into());
    }

    fn pair(&mut self, flag: &str, value: impl ToString) {
        self.0.push(flag.into());
        self.0.push(value.to_string());
    }

    fn pair_if(&mut self, flag: &str, value: &str) {
        if !value.is_empty() {
            self.pair(flag, value);
        }
    }

    fn pair_some(&mut self, flag: &str, value: Option<impl ToString>) {
        if let Some(v) = value {
            self.pair(flag, v);
        }
    }
}

/// Dapr's command line for the sidecar, in Dapr's order.
pub fn args(a: &SidecarAnnotations, s: &InjectorSettings, app_id: &str) -> Vec<String> {
    let mut l = Line(vec!["/daprd".into()]);
    l.pair("--dapr-http-port", HTTP_PORT);
    l.pair("--dapr-grpc-port", a.grpc_port);
    l.pair("--dapr-internal-grpc-port", a.internal_grpc_port);
    l.pair("--dapr-listen-addresses", &a.listen_addresses);
    l.pair("--dapr-public-port", PUBLIC_PORT);
    l.pair("--app-id", app_id);
    l.pair("--app-protocol", &a.app_protocol);
    l.pair("--log-level", &a.log_level);
    l.pair(
        "--dapr-graceful-shutdown-seconds",
        a.graceful_shutdown_seconds,
    );
    l.pair("--mode", "kubernetes");
    l.pair_if("--control-plane-address", &s.operator_address);
    l.pair_if("--sentry-address", &s.sentry_address);
    if a.app_port > 0 {
        l.pair("--app-port", a.app_port);
    }
    if a.enable_metrics {
        l.flag("--enable-metrics");
        l.pair("--metrics-port", a.metrics_port);
    }
    l.pair_if("--config", &a.config);
    l.pair_if("--app-channel-address", &a.app_channel_address);
    let placement = if a.placement_host_address.trim().is_empty() {
        &s.placement_address
    } else {
        &a.placement_host_address
    };
    l.pair_if("--placement-host-address", placement.trim());
    l.pair_if(
        "--sentry-request-jwt-audiences",
        &a.sentry_request_jwt_audiences,
    );
    if let Some(logging) = a.enable_api_logging {
        l.flag(&format!("--enable-api-logging={logging}"));
    }
    if a.disable_builtin_k8s_secret_store {
        l.flag("--disable-builtin-k8s-secret-store");
    }
    if a.enable_app_health_check {
        l.flag("--enable-app-health-check");
        l.pair("--app-health-check-path", &a.app_health_check_path);
        l.pair("--app-health-probe-interval", a.app_health_probe_interval);
        l.pair("--app-health-probe-timeout", a.app_health_probe_timeout);
        l.pair("--app-health-threshold", a.app_health_threshold);
    }
    l.pair_some(
        "--app-binding-options-timeout",
        a.app_binding_options_timeout.as_ref(),
    );
    for (on, flag) in [
        (a.log_as_json, "--log-as-json"),
        (a.enable_profiling, "--enable-profiling"),
        (s.mtls_enabled, "--enable-mtls"),
        (a.app_ssl, "--app-ssl"),
    ] {
        if on {
            l.flag(flag);
        }
    }
    l.pair_some("--app-max-concurrency", a.app_max_concurrency);
    l.pair_some("--dapr-http-max-request-size", a.http_max_request_size);
    l.pair_if("--max-body-size", &a.max_body_size);
    l.pair_some("--dapr-http-read-buffer-size", a.http_read_buffer_size);
    l.pair_if("--read-buffer-size", &a.read_buffer_size);
    if !a.unix_domain_socket_path.is_empty() {
        l.pair("--unix-domain-socket", "/var/run/dapr-sockets");
    }
    l.pair_some(
        "--dapr-block-shutdown-duration",
        a.block_shutdown_duration.as_ref(),
    );
    l.pair_some(
        "--actors-disseminate-timeout",
        a.actors_disseminate_timeout.as_ref(),
    );
    l.pair_some(
        "--scheduler-host-address",
        a.scheduler_host_address.as_ref(),
    );
    l.pair_some(
        "--disable-init-endpoints",
        a.disable_init_endpoints.as_ref(),
    );
    l.0
}

/// Whether `q` is a Kubernetes quantity (`100m`, `1.5Gi`, `2e3`, ...).
pub fn is_quantity(q: &str) -> bool {
    let (number, suffix) = q.split_at(
        q.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
            .unwrap_or(q.len()),
    );
    let number = number.strip_prefix(['+', '-']).unwrap_or(number);
    let digits_ok = !number.is_empty()
        && number.chars().filter(|c| *c == '.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit())
        && number.chars().all(|c| c.is_ascii_digit() || c == '.');
    let suffix_ok = matches!(
        suffix,
        "" | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
            | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
    ) || suffix.strip_prefix(['e', 'E']).is_some_and(|exp| {
        let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        !exp.is_empty() && exp.chars().all(|c| c.is_ascii_digit())
    });
    digits_ok && suffix_ok
}

/// The sidecar's requests and limits; as in Dapr, one quantity that does not parse drops
/// them all (with a warning) and the defaults apply.
fn resources(a: &SidecarAnnotations, warnings: &mut Vec<Warning>) -> ResourceRequirements {
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    for (key, value, resource, into_limits) in [
        ("dapr.io/sidecar-cpu-request", &a.cpu_request, "cpu", false),
        ("dapr.io/sidecar-cpu-limit", &a.cpu_limit, "cpu", true),
        (
            "dapr.io/sidecar-memory-request",
            &a.memory_request,
            "memory",
            false,
        ),
        (
            "dapr.io/sidecar-memory-limit",
            &a.memory_limit,
            "memory",
            true,
        ),
    ] {
        if value.is_empty() {
            continue;
        }
        if !is_quantity(value) {
            warnings.push(Warning {
                key,
                message: format!(
                    "{value:?} is not a quantity; the sidecar gets no requests or limits"
                ),
            });
            return ResourceRequirements::default();
        }
        let target = if into_limits {
            &mut limits
        } else {
            &mut requests
        };
        target.insert(resource.to_string(), Quantity(value.clone()));
    }
    ResourceRequirements {
        requests: (!requests.is_empty()).then_some(requests),
        limits: (!limits.is_empty()).then_some(limits),
        ..Default::default()
    }
}

/// Splits `dapr.io/env` as Dapr does: at a comma only when a `NAME=` follows it, so a
/// value may itself hold commas (`A=1,2,B=3` is `A` = `1,2` and `B` = `3`).
fn env_pairs(text: &str) -> Vec<&str> {
    let starts_pair = |rest: &str| {
        let rest = rest.trim_start();
        let name_len = rest
            .char_indices()
            .take_while(|(i, c)| {
                c.is_ascii_alphabetic() || *c == '_' || (*i > 0 && c.is_ascii_digit())
            })
            .count();
        name_len > 0 && rest[name_len..].starts_with('=')
    };
    let mut pairs = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == ',' && starts_pair(&text[i + 1..]) {
            pairs.push(&text[start..i]);
            start = i + 1;
        }
    }
    pairs.push(&text[start..]);
    pairs
}

/// `KEY=value,KEY2=value2` from `dapr.io/env`, or `KEY=secret:key,KEY2=secret` from
/// `dapr.io/env-from-secret` (a Secret's key, or the key named as the Secret, as Dapr
/// reads it); a pair without `=` is skipped with a warning.
fn extra_env(text: &str, key: &'static str, warnings: &mut Vec<Warning>) -> Vec<EnvVar> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    let from_secret = key == "dapr.io/env-from-secret";
    let mut out = Vec::new();
    for pair in env_pairs(text).into_iter().map(str::trim) {
        if pair.is_empty() {
            continue;
        }
        let Some((name, value)) = pair.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
            warnings.push(Warning {
                key,
                message: format!("{pair:?} is not KEY=value; skipped"),
            });
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if !from_secret {
            out.push(env(name, value));
            continue;
        }
        let parts: Vec<&str> = value.split(':').map(str::trim).collect();
        match parts.as_slice() {
            [secret] if !secret.is_empty() => out.push(env_from_secret(name, secret, secret)),
            [secret, secret_key] if !secret.is_empty() && !secret_key.is_empty() => {
                out.push(env_from_secret(name, secret, secret_key))
            }
            _ => warnings.push(Warning {
                key,
                message: format!("{value:?} is not secret or secret:key; {name} skipped"),
            }),
        }
    }
    out
}

/// The container, and what in the annotations could not be used.
pub fn sidecar_container(
    a: &SidecarAnnotations,
    s: &InjectorSettings,
    namespace: &str,
    app_id: &str,
) -> (Container, Vec<Warning>) {
    let mut warnings = Vec::new();
    let mut env_vars = vec![
        env("NAMESPACE", namespace),
        env("DAPR_TRUST_ANCHORS", s.trust_anchors.clone()),
        env_from_field("POD_NAME", "metadata.name"),
        env(
            "DAPR_CONTROLPLANE_NAMESPACE",
            s.control_plane_namespace.clone(),
        ),
        env(
            "DAPR_CONTROLPLANE_TRUST_DOMAIN",
            s.control_plane_trust_domain.clone(),
        ),
    ];
    if s.downward_apis {
        env_vars.push(env_from_field("DAPR_HOST_IP", "status.podIP"));
    }
    let mut extra = extra_env(&a.env, "dapr.io/env", &mut warnings);
    extra.extend(extra_env(
        &a.env_from_secret,
        "dapr.io/env-from-secret",
        &mut warnings,
    ));
    if !extra.is_empty() {
        let keys: Vec<String> = extra.iter().map(|e| e.name.clone()).collect();
        env_vars.extend(extra);
        env_vars.push(env("DAPR_ENV_KEYS", keys.join(" ")));
    }
    if !a.api_token_secret.is_empty() {
        env_vars.push(env_from_secret(
            "DAPR_API_TOKEN",
            &a.api_token_secret,
            "token",
        ));
    }
    if !a.app_token_secret.is_empty() {
        env_vars.push(env_from_secret(
            "APP_API_TOKEN",
            &a.app_token_secret,
            "token",
        ));
    }
    let mut ports = vec![
        port("dapr-http", HTTP_PORT),
        port("dapr-grpc", a.grpc_port),
        port("dapr-internal", a.internal_grpc_port),
        port("dapr-metrics", a.metrics_port),
    ];
    let mut command_line = args(a, s, app_id);
    if a.enable_debug {
        ports.push(port("dapr-debug", a.debug_port));
        let mut debug = vec![
            "/dlv".to_string(),
            "--listen".into(),
            format!(":{}", a.debug_port),
            "--accept-multiclient".into(),
            "--headless=true".into(),
            "--log".into(),
            "--api-version=2".into(),
            "exec".into(),
            "/daprd".into(),
            "--".into(),
        ];
        debug.extend(command_line.drain(1..));
        command_line = debug;
    }
    let security_context = SecurityContext {
        allow_privilege_escalation: Some(false),
        run_as_non_root: Some(s.run_as_non_root),
        read_only_root_filesystem: Some(s.read_only_root_filesystem),
        seccomp_profile: (!a.seccomp_profile_type.is_empty()).then(|| SeccompProfile {
            type_: a.seccomp_profile_type.clone(),
            ..Default::default()
        }),
        capabilities: s.drop_all_capabilities.then(|| Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let container = Container {
        name: CONTAINER_NAME.into(),
        image: Some(if a.sidecar_image.is_empty() {
            s.sidecar_image.clone()
        } else {
            a.sidecar_image.clone()
        }),
        image_pull_policy: (!s.image_pull_policy.is_empty()).then(|| s.image_pull_policy.clone()),
        args: Some(command_line),
        env: Some(env_vars),
        ports: Some(ports),
        security_context: Some(security_context),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/v1.0/healthz".into()),
                port: IntOrString::Int(PUBLIC_PORT),
                ..Default::default()
            }),
            initial_delay_seconds: Some(a.readiness_probe_delay_seconds),
            timeout_seconds: Some(a.readiness_probe_timeout_seconds),
            period_seconds: Some(a.readiness_probe_period_seconds),
            failure_threshold: Some(a.readiness_probe_threshold),
            ..Default::default()
        }),
        liveness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(PUBLIC_PORT),
                ..Default::default()
            }),
            initial_delay_seconds: Some(a.liveness_probe_delay_seconds),
            timeout_seconds: Some(a.liveness_probe_timeout_seconds),
            period_seconds: Some(a.liveness_probe_period_seconds),
            failure_threshold: Some(a.liveness_probe_threshold),
            ..Default::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: TOKEN_VOLUME.into(),
            mount_path: TOKEN_MOUNT_PATH.into(),
            read_only: Some(true),
            ..Default::default()
        }]),
        resources: Some(resources(a, &mut warnings)),
        restart_policy: a.enable_native_sidecar.then(|| "Always".to_string()),
        ..Default::default()
    };
    (container, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> SidecarAnnotations {
        let (a, warnings) = crate::annotations::read_pairs(pairs);
        assert!(warnings.is_empty(), "{warnings:?}");
        a
    }

    fn env_value<'a>(c: &'a Container, name: &str) -> Option<&'a EnvVar> {
        c.env.as_ref()?.iter().find(|e| e.name == name)
    }

    #[test]
    fn the_default_command_line_is_daprs() {
        let a = annotations(&[("dapr.io/enabled", "true"), ("dapr.io/app-port", "8080")]);
        let s = InjectorSettings::default();
        assert_eq!(
            args(&a, &s, "orders"),
            [
                "/daprd",
                "--dapr-http-port",
                "3500",
                "--dapr-grpc-port",
                "50001",
                "--dapr-internal-grpc-port",
                "50002",
                "--dapr-listen-addresses",
                "[::1],127.0.0.1",
                "--dapr-public-port",
                "3501",
                "--app-id",
                "orders",
                "--app-protocol",
                "http",
                "--log-level",
                "info",
                "--dapr-graceful-shutdown-seconds",
                "-1",
                "--mode",
                "kubernetes",
                "--control-plane-address",
                "dapr-api.dapr-system.svc.cluster.local:443",
                "--sentry-address",
                "dapr-sentry.dapr-system.svc.cluster.local:443",
                "--app-port",
                "8080",
                "--enable-metrics",
                "--metrics-port",
                "9090",
                "--placement-host-address",
                "dapr-placement-server.dapr-system.svc.cluster.local:50005",
                "--enable-mtls",
            ]
        );
    }

    #[test]
    fn annotations_reach_the_command_line() {
        let a = annotations(&[
            ("dapr.io/config", "tracing"),
            ("dapr.io/log-as-json", "true"),
            ("dapr.io/app-max-concurrency", "3"),
            ("dapr.io/max-body-size", "16Mi"),
            ("dapr.io/read-buffer-size", "8Ki"),
            ("dapr.io/enable-api-logging", "true"),
            ("dapr.io/enable-app-health-check", "true"),
            ("dapr.io/placement-host-address", "p:1"),
            ("dapr.io/enable-metrics", "false"),
        ]);
        let line = args(&a, &InjectorSettings::default(), "x").join(" ");
        for part in [
            "--config tracing",
            "--log-as-json",
            "--app-max-concurrency 3",
            "--max-body-size 16Mi",
            "--read-buffer-size 8Ki",
            "--enable-api-logging=true",
            "--enable-app-health-check --app-health-check-path /healthz --app-health-probe-interval 5 --app-health-probe-timeout 500 --app-health-threshold 3",
            "--placement-host-address p:1",
        ] {
            assert!(line.contains(part), "{part:?} in {line}");
        }
        assert!(!line.contains("--enable-metrics"), "{line}");
    }

    #[test]
    fn the_container_has_daprs_ports_env_probes_and_security() {
        let a = annotations(&[
            ("dapr.io/api-token-secret", "api-tok"),
            ("dapr.io/app-token-secret", "app-tok"),
            ("dapr.io/env", "A=1, B=two"),
            ("dapr.io/sidecar-cpu-request", "100m"),
            ("dapr.io/sidecar-memory-limit", "1Gi"),
        ]);
        let s = InjectorSettings {
            trust_anchors: "PEM".into(),
            ..InjectorSettings::default()
        };
        let (c, warnings) = sidecar_container(&a, &s, "shop", "orders");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.name, "daprd");
        let ports: Vec<(String, i32)> = c
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.clone().unwrap_or_default(), p.container_port))
            .collect();
        assert_eq!(
            ports,
            [
                ("dapr-http".to_string(), 3500),
                ("dapr-grpc".to_string(), 50001),
                ("dapr-internal".to_string(), 50002),
                ("dapr-metrics".to_string(), 9090)
            ]
        );
        assert_eq!(
            env_value(&c, "NAMESPACE").and_then(|e| e.value.as_deref()),
            Some("shop")
        );
        assert_eq!(
            env_value(&c, "DAPR_TRUST_ANCHORS").and_then(|e| e.value.as_deref()),
            Some("PEM")
        );
        assert!(env_value(&c, "POD_NAME").is_some_and(|e| e.value_from.is_some()));
        assert_eq!(
            env_value(&c, "DAPR_ENV_KEYS").and_then(|e| e.value.as_deref()),
            Some("A B")
        );
        assert_eq!(
            env_value(&c, "B").and_then(|e| e.value.as_deref()),
            Some("two")
        );
        let token = env_value(&c, "DAPR_API_TOKEN")
            .and_then(|e| e.value_from.as_ref())
            .and_then(|v| v.secret_key_ref.as_ref())
            .expect("secret ref");
        assert_eq!(
            (token.name.as_str(), token.key.as_str()),
            ("api-tok", "token")
        );
        assert!(env_value(&c, "APP_API_TOKEN").is_some());
        let ready = c.readiness_probe.as_ref().expect("readiness");
        let get = ready.http_get.as_ref().expect("http");
        assert_eq!(
            (get.path.as_deref(), &get.port),
            (Some("/v1.0/healthz"), &IntOrString::Int(3501))
        );
        assert_eq!(
            (ready.initial_delay_seconds, ready.failure_threshold),
            (Some(1), Some(5))
        );
        let live = c.liveness_probe.as_ref().expect("liveness");
        assert!(live.tcp_socket.is_some());
        assert_eq!(live.initial_delay_seconds, Some(180));
        let sc = c.security_context.as_ref().expect("security");
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        let r = c.resources.as_ref().expect("resources");
        assert_eq!(
            r.requests.as_ref().and_then(|m| m.get("cpu")),
            Some(&Quantity("100m".into()))
        );
        assert_eq!(
            r.limits.as_ref().and_then(|m| m.get("memory")),
            Some(&Quantity("1Gi".into()))
        );
        let mount = &c.volume_mounts.as_ref().expect("mounts")[0];
        assert_eq!(
            (mount.name.as_str(), mount.mount_path.as_str()),
            (TOKEN_VOLUME, TOKEN_MOUNT_PATH)
        );
    }

    #[test]
    fn a_bad_quantity_drops_requests_and_limits_with_a_warning() {
        let a = annotations(&[
            ("dapr.io/sidecar-cpu-request", "100m"),
            ("dapr.io/sidecar-memory-limit", "lots"),
        ]);
        let (c, warnings) = sidecar_container(&a, &InjectorSettings::default(), "ns", "x");
        assert_eq!(c.resources, Some(ResourceRequirements::default()));
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].key, "dapr.io/sidecar-memory-limit");
    }

    #[test]
    fn quantities_as_kubernetes_writes_them() {
        for good in ["1", "100m", "1.5Gi", "64Mi", "2e3", "0.5", "+1k", "1E-2"] {
            assert!(is_quantity(good), "{good:?}");
        }
        for bad in ["", "lots", "1.2.3", "Mi", "1mi", "1e", "--1"] {
            assert!(!is_quantity(bad), "{bad:?}");
        }
    }

    #[test]
    fn env_values_may_hold_commas() {
        assert_eq!(env_pairs("A=1,2,B=3"), ["A=1,2", "B=3"]);
        assert_eq!(env_pairs("A=x, B_2=y"), ["A=x", " B_2=y"]);
        assert_eq!(
            env_pairs("A=1,2b=3"),
            ["A=1,2b=3"],
            "a name cannot start with a digit"
        );
    }

    #[test]
    fn env_from_secret_refers_to_secret_keys() {
        let a = annotations(&[
            ("dapr.io/env", "PLAIN=1"),
            (
                "dapr.io/env-from-secret",
                "DB_PASS=db:password, TOKEN=token,BAD=a:b:c",
            ),
        ]);
        let (c, warnings) = sidecar_container(&a, &InjectorSettings::default(), "ns", "x");
        let secret = |name: &str| {
            let e = env_value(&c, name).expect(name);
            let r = e
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
                .expect("secretKeyRef");
            (r.name.clone(), r.key.clone())
        };
        assert_eq!(secret("DB_PASS"), ("db".into(), "password".into()));
        assert_eq!(secret("TOKEN"), ("token".into(), "token".into()));
        assert!(env_value(&c, "BAD").is_none());
        assert!(
            warnings[0]
                .to_string()
                .starts_with("dapr.io/env-from-secret")
        );
        assert_eq!(
            env_value(&c, "DAPR_ENV_KEYS").and_then(|e| e.value.as_deref()),
            Some("PLAIN DB_PASS TOKEN")
        );
    }

    #[test]
    fn debug_wraps_daprd_in_dlv() {
        let a = annotations(&[("dapr.io/enable-debug", "true")]);
        let (c, _) = sidecar_container(&a, &InjectorSettings::default(), "ns", "x");
        let args = c.args.expect("args");
        assert_eq!(&args[..3], ["/dlv", "--listen", ":40000"]);
        assert_eq!(&args[8..11], ["/daprd", "--", "--dapr-http-port"]);
        assert!(c.ports.iter().flatten().any(|p| p.container_port == 40000));
    }
}
