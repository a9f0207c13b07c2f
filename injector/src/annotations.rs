//! The `dapr.io/*` Pod annotations the injector honours, each with Dapr's name, type and
//! default, read the way Dapr's injector reads them:
//!
//! - an annotation that is absent keeps the default; one that is present but empty is
//!   taken as given (`""` switches a string setting off, as in Dapr);
//! - booleans are "truthy" when they are `y`, `yes`, `true`, `t`, `on` or `1` in any case,
//!   and false otherwise;
//! - a number that does not parse is ignored with a warning and the default stays;
//! - the placement and scheduler addresses lose surrounding quotes and spaces.

use std::collections::BTreeMap;

/// Why an annotation's value was not used; the Pod is still admitted, as Dapr admits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub key: &'static str,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// How one annotation's text becomes a setting.
trait FromAnnotation: Sized {
    fn from_annotation(raw: &str) -> Result<Self, String>;
}

impl FromAnnotation for String {
    fn from_annotation(raw: &str) -> Result<Self, String> {
        Ok(raw.to_string())
    }
}

impl FromAnnotation for bool {
    fn from_annotation(raw: &str) -> Result<Self, String> {
        Ok(is_truthy(raw))
    }
}

impl FromAnnotation for i32 {
    fn from_annotation(raw: &str) -> Result<Self, String> {
        let wide: i64 = raw
            .parse()
            .map_err(|_| format!("{raw:?} is not an integer; the annotation is ignored"))?;
        i32::try_from(wide).map_err(|_| format!("{raw} is out of range; the annotation is ignored"))
    }
}

impl<T: FromAnnotation> FromAnnotation for Option<T> {
    fn from_annotation(raw: &str) -> Result<Self, String> {
        T::from_annotation(raw).map(Some)
    }
}

/// Dapr's "truthy" strings.
pub fn is_truthy(raw: &str) -> bool {
    matches!(
        raw.trim().to_ascii_lowercase().as_str(),
        "y" | "yes" | "true" | "t" | "on" | "1"
    )
}

macro_rules! annotations {
    ($(
        $(#[$doc:meta])*
        $field:ident: $ty:ty = $key:literal, $default:expr;
    )*) => {
        /// Every `dapr.io/*` annotation the injector reads, as typed settings.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct SidecarAnnotations {
            $( $(#[$doc])* pub $field: $ty, )*
        }

        impl Default for SidecarAnnotations {
            /// Dapr's defaults, for a Pod that sets none of the annotations.
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        /// The names of every annotation [`SidecarAnnotations`] reads.
        pub const KEYS: &[&str] = &[$( $key, )*];

        impl SidecarAnnotations {
            /// Reads `annotations` over Dapr's defaults; values that cannot be used are
            /// reported and leave the default in place.
            pub fn read(annotations: &BTreeMap<String, String>) -> (Self, Vec<Warning>) {
                let mut out = Self::default();
                let mut warnings = Vec::new();
                $(
                    if let Some(raw) = annotations.get($key) {
                        let raw = clean($key, raw);
                        match <$ty as FromAnnotation>::from_annotation(&raw) {
                            Ok(v) => out.$field = v,
                            Err(message) => warnings.push(Warning { key: $key, message }),
                        }
                    }
                )*
                (out, warnings)
            }
        }
    };
}

/// Dapr strips quotes and spaces around the placement and scheduler addresses only.
fn clean(key: &str, raw: &str) -> String {
    if key == "dapr.io/placement-host-address" || key == "dapr.io/scheduler-host-address" {
        raw.trim_matches(['"', '\'']).trim().to_string()
    } else {
        raw.to_string()
    }
}

annotations! {
    /// Inject a sidecar at all.
    enabled: bool = "dapr.io/enabled", false;
    /// The app's port; 0: the app listens on none.
    app_port: i32 = "dapr.io/app-port", 0;
    /// The Configuration resource the sidecar loads.
    config: String = "dapr.io/config", String::new();
    app_protocol: String = "dapr.io/app-protocol", "http".into();
    /// Deprecated by Dapr in favour of `app-protocol` `https`/`grpcs`; still honoured.
    app_ssl: bool = "dapr.io/app-ssl", false;
    /// The app id; empty: the Pod's name as Dapr derives it.
    app_id: String = "dapr.io/app-id", String::new();
    enable_profiling: bool = "dapr.io/enable-profiling", false;
    log_level: String = "dapr.io/log-level", "info".into();
    /// A Secret whose `token` key becomes `DAPR_API_TOKEN`.
    api_token_secret: String = "dapr.io/api-token-secret", String::new();
    /// A Secret whose `token` key becomes `APP_API_TOKEN`.
    app_token_secret: String = "dapr.io/app-token-secret", String::new();
    log_as_json: bool = "dapr.io/log-as-json", false;
    app_max_concurrency: Option<i32> = "dapr.io/app-max-concurrency", None;
    enable_metrics: bool = "dapr.io/enable-metrics", true;
    metrics_port: i32 = "dapr.io/metrics-port", 9090;
    enable_debug: bool = "dapr.io/enable-debug", false;
    debug_port: i32 = "dapr.io/debug-port", 40000;
    /// `KEY=value,KEY2=value2` added to the sidecar's environment.
    env: String = "dapr.io/env", String::new();
    /// `KEY=secret[:key],...` added to the sidecar's environment from Secrets.
    env_from_secret: String = "dapr.io/env-from-secret", String::new();
    grpc_port: i32 = "dapr.io/grpc-port", 50001;
    internal_grpc_port: i32 = "dapr.io/internal-grpc-port", 50002;
    cpu_request: String = "dapr.io/sidecar-cpu-request", String::new();
    cpu_limit: String = "dapr.io/sidecar-cpu-limit", String::new();
    memory_request: String = "dapr.io/sidecar-memory-request", String::new();
    memory_limit: String = "dapr.io/sidecar-memory-limit", String::new();
    listen_addresses: String = "dapr.io/sidecar-listen-addresses", "[::1],127.0.0.1".into();
    liveness_probe_delay_seconds: i32 = "dapr.io/sidecar-liveness-probe-delay-seconds", 180;
    liveness_probe_timeout_seconds: i32 = "dapr.io/sidecar-liveness-probe-timeout-seconds", 3;
    liveness_probe_period_seconds: i32 = "dapr.io/sidecar-liveness-probe-period-seconds", 10;
    liveness_probe_threshold: i32 = "dapr.io/sidecar-liveness-probe-threshold", 5;
    readiness_probe_delay_seconds: i32 = "dapr.io/sidecar-readiness-probe-delay-seconds", 1;
    readiness_probe_timeout_seconds: i32 = "dapr.io/sidecar-readiness-probe-timeout-seconds", 1;
    readiness_probe_period_seconds: i32 = "dapr.io/sidecar-readiness-probe-period-seconds", 1;
    readiness_probe_threshold: i32 = "dapr.io/sidecar-readiness-probe-threshold", 5;
    /// The sidecar image; empty: the injector's configured image.
    sidecar_image: String = "dapr.io/sidecar-image", String::new();
    seccomp_profile_type: String = "dapr.io/sidecar-seccomp-profile-type", String::new();
    /// Legacy, in MB: `--dapr-http-max-request-size`.
    http_max_request_size: Option<i32> = "dapr.io/http-max-request-size", None;
    max_body_size: String = "dapr.io/max-body-size", String::new();
    /// Legacy, in KB: `--dapr-http-read-buffer-size`.
    http_read_buffer_size: Option<i32> = "dapr.io/http-read-buffer-size", None;
    read_buffer_size: String = "dapr.io/read-buffer-size", String::new();
    /// -1: the sidecar's own default.
    graceful_shutdown_seconds: i32 = "dapr.io/graceful-shutdown-seconds", -1;
    block_shutdown_duration: Option<String> = "dapr.io/block-shutdown-duration", None;
    enable_api_logging: Option<bool> = "dapr.io/enable-api-logging", None;
    unix_domain_socket_path: String = "dapr.io/unix-domain-socket-path", String::new();
    /// `volume:/path,...` mounted read-only into the sidecar.
    volume_mounts: String = "dapr.io/volume-mounts", String::new();
    /// `volume:/path,...` mounted read-write into the sidecar.
    volume_mounts_rw: String = "dapr.io/volume-mounts-rw", String::new();
    disable_builtin_k8s_secret_store: bool = "dapr.io/disable-builtin-k8s-secret-store", false;
    enable_app_health_check: bool = "dapr.io/enable-app-health-check", false;
    app_health_check_path: String = "dapr.io/app-health-check-path", "/healthz".into();
    /// Seconds.
    app_health_probe_interval: i32 = "dapr.io/app-health-probe-interval", 5;
    /// Milliseconds.
    app_health_probe_timeout: i32 = "dapr.io/app-health-probe-timeout", 500;
    app_health_threshold: i32 = "dapr.io/app-health-threshold", 3;
    app_binding_options_timeout: Option<String> = "dapr.io/app-binding-options-timeout", None;
    placement_host_address: String = "dapr.io/placement-host-address", String::new();
    actors_disseminate_timeout: Option<String> = "dapr.io/actors-disseminate-timeout", None;
    scheduler_host_address: Option<String> = "dapr.io/scheduler-host-address", None;
    pluggable_components: String = "dapr.io/pluggable-components", String::new();
    pluggable_components_sockets_folder: String = "dapr.io/pluggable-components-sockets-folder", String::new();
    component_container: String = "dapr.io/component-container", String::new();
    inject_pluggable_components: bool = "dapr.io/inject-pluggable-components", false;
    app_channel_address: String = "dapr.io/app-channel-address", String::new();
    sentry_request_jwt_audiences: String = "dapr.io/sentry-request-jwt-audiences", String::new();
    /// Annotations for the `<app-id>-dapr` Service the operator keeps.
    sidecar_svc_annotations: String = "dapr.io/sidecar-svc-annotations", String::new();
    disable_init_endpoints: Option<String> = "dapr.io/disable-init-endpoints", None;
    enable_native_sidecar: bool = "dapr.io/enable-native-sidecar", false;
}

/// The crate's tests write annotations as `(key, value)` pairs.
#[cfg(test)]
pub(crate) fn read_pairs(pairs: &[(&str, &str)]) -> (SidecarAnnotations, Vec<Warning>) {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    SidecarAnnotations::read(&map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> (SidecarAnnotations, Vec<Warning>) {
        read_pairs(pairs)
    }

    #[test]
    fn no_annotations_are_daprs_defaults() {
        let (a, warnings) = read(&[]);
        assert!(warnings.is_empty());
        assert!(!a.enabled);
        assert_eq!(a.app_protocol, "http");
        assert_eq!(a.log_level, "info");
        assert!(a.enable_metrics);
        assert_eq!(
            (a.metrics_port, a.grpc_port, a.internal_grpc_port),
            (9090, 50001, 50002)
        );
        assert_eq!(a.listen_addresses, "[::1],127.0.0.1");
        assert_eq!(
            (
                a.liveness_probe_delay_seconds,
                a.liveness_probe_timeout_seconds,
                a.liveness_probe_period_seconds,
                a.liveness_probe_threshold
            ),
            (180, 3, 10, 5)
        );
        assert_eq!(
            (
                a.readiness_probe_delay_seconds,
                a.readiness_probe_timeout_seconds,
                a.readiness_probe_period_seconds,
                a.readiness_probe_threshold
            ),
            (1, 1, 1, 5)
        );
        assert_eq!(a.graceful_shutdown_seconds, -1);
        assert_eq!(a.app_health_check_path, "/healthz");
        assert_eq!(
            (
                a.app_health_probe_interval,
                a.app_health_probe_timeout,
                a.app_health_threshold
            ),
            (5, 500, 3)
        );
        assert_eq!(a.debug_port, 40000);
        assert_eq!((a.app_max_concurrency, a.enable_api_logging), (None, None));
    }

    /// One row per annotation: the value written, and what the setting becomes.
    #[test]
    fn each_annotation_sets_its_setting() {
        type Check = fn(&SidecarAnnotations) -> bool;
        let table: &[(&str, &str, Check)] = &[
            ("dapr.io/enabled", "true", |a| a.enabled),
            ("dapr.io/app-port", "8080", |a| a.app_port == 8080),
            ("dapr.io/config", "tracing", |a| a.config == "tracing"),
            ("dapr.io/app-protocol", "grpc", |a| a.app_protocol == "grpc"),
            ("dapr.io/app-ssl", "yes", |a| a.app_ssl),
            ("dapr.io/app-id", "orders", |a| a.app_id == "orders"),
            ("dapr.io/enable-profiling", "on", |a| a.enable_profiling),
            ("dapr.io/log-level", "debug", |a| a.log_level == "debug"),
            ("dapr.io/api-token-secret", "tok", |a| {
                a.api_token_secret == "tok"
            }),
            ("dapr.io/app-token-secret", "atok", |a| {
                a.app_token_secret == "atok"
            }),
            ("dapr.io/log-as-json", "T", |a| a.log_as_json),
            ("dapr.io/app-max-concurrency", "10", |a| {
                a.app_max_concurrency == Some(10)
            }),
            ("dapr.io/enable-metrics", "false", |a| !a.enable_metrics),
            ("dapr.io/metrics-port", "9999", |a| a.metrics_port == 9999),
            ("dapr.io/enable-debug", "1", |a| a.enable_debug),
            ("dapr.io/debug-port", "41000", |a| a.debug_port == 41000),
            ("dapr.io/env", "A=1,B=2", |a| a.env == "A=1,B=2"),
            ("dapr.io/env-from-secret", "A=s:k", |a| {
                a.env_from_secret == "A=s:k"
            }),
            ("dapr.io/grpc-port", "50011", |a| a.grpc_port == 50011),
            ("dapr.io/internal-grpc-port", "50012", |a| {
                a.internal_grpc_port == 50012
            }),
            ("dapr.io/sidecar-cpu-request", "100m", |a| {
                a.cpu_request == "100m"
            }),
            ("dapr.io/sidecar-cpu-limit", "1", |a| a.cpu_limit == "1"),
            ("dapr.io/sidecar-memory-request", "64Mi", |a| {
                a.memory_request == "64Mi"
            }),
            ("dapr.io/sidecar-memory-limit", "1Gi", |a| {
                a.memory_limit == "1Gi"
            }),
            ("dapr.io/sidecar-listen-addresses", "0.0.0.0", |a| {
                a.listen_addresses == "0.0.0.0"
            }),
            ("dapr.io/sidecar-liveness-probe-delay-seconds", "7", |a| {
                a.liveness_probe_delay_seconds == 7
            }),
            ("dapr.io/sidecar-liveness-probe-timeout-seconds", "8", |a| {
                a.liveness_probe_timeout_seconds == 8
            }),
            ("dapr.io/sidecar-liveness-probe-period-seconds", "9", |a| {
                a.liveness_probe_period_seconds == 9
            }),
            ("dapr.io/sidecar-liveness-probe-threshold", "2", |a| {
                a.liveness_probe_threshold == 2
            }),
            ("dapr.io/sidecar-readiness-probe-delay-seconds", "3", |a| {
                a.readiness_probe_delay_seconds == 3
            }),
            (
                "dapr.io/sidecar-readiness-probe-timeout-seconds",
                "4",
                |a| a.readiness_probe_timeout_seconds == 4,
            ),
            ("dapr.io/sidecar-readiness-probe-period-seconds", "6", |a| {
                a.readiness_probe_period_seconds == 6
            }),
            ("dapr.io/sidecar-readiness-probe-threshold", "11", |a| {
                a.readiness_probe_threshold == 11
            }),
            ("dapr.io/sidecar-image", "r/daprd:x", |a| {
                a.sidecar_image == "r/daprd:x"
            }),
            (
                "dapr.io/sidecar-seccomp-profile-type",
                "RuntimeDefault",
                |a| a.seccomp_profile_type == "RuntimeDefault",
            ),
            ("dapr.io/http-max-request-size", "16", |a| {
                a.http_max_request_size == Some(16)
            }),
            ("dapr.io/max-body-size", "16Mi", |a| {
                a.max_body_size == "16Mi"
            }),
            ("dapr.io/http-read-buffer-size", "8", |a| {
                a.http_read_buffer_size == Some(8)
            }),
            ("dapr.io/read-buffer-size", "8Ki", |a| {
                a.read_buffer_size == "8Ki"
            }),
            ("dapr.io/graceful-shutdown-seconds", "30", |a| {
                a.graceful_shutdown_seconds == 30
            }),
            ("dapr.io/block-shutdown-duration", "10s", |a| {
                a.block_shutdown_duration.as_deref() == Some("10s")
            }),
            ("dapr.io/enable-api-logging", "false", |a| {
                a.enable_api_logging == Some(false)
            }),
            ("dapr.io/unix-domain-socket-path", "/tmp", |a| {
                a.unix_domain_socket_path == "/tmp"
            }),
            ("dapr.io/volume-mounts", "v:/m", |a| {
                a.volume_mounts == "v:/m"
            }),
            ("dapr.io/volume-mounts-rw", "w:/n", |a| {
                a.volume_mounts_rw == "w:/n"
            }),
            ("dapr.io/disable-builtin-k8s-secret-store", "true", |a| {
                a.disable_builtin_k8s_secret_store
            }),
            ("dapr.io/enable-app-health-check", "true", |a| {
                a.enable_app_health_check
            }),
            ("dapr.io/app-health-check-path", "/up", |a| {
                a.app_health_check_path == "/up"
            }),
            ("dapr.io/app-health-probe-interval", "2", |a| {
                a.app_health_probe_interval == 2
            }),
            ("dapr.io/app-health-probe-timeout", "250", |a| {
                a.app_health_probe_timeout == 250
            }),
            ("dapr.io/app-health-threshold", "4", |a| {
                a.app_health_threshold == 4
            }),
            ("dapr.io/app-binding-options-timeout", "1s", |a| {
                a.app_binding_options_timeout.as_deref() == Some("1s")
            }),
            ("dapr.io/placement-host-address", "' p:50005 '", |a| {
                a.placement_host_address == "p:50005"
            }),
            ("dapr.io/actors-disseminate-timeout", "2s", |a| {
                a.actors_disseminate_timeout.as_deref() == Some("2s")
            }),
            ("dapr.io/scheduler-host-address", "'s:50006'", |a| {
                a.scheduler_host_address.as_deref() == Some("s:50006")
            }),
            ("dapr.io/pluggable-components", "c1,c2", |a| {
                a.pluggable_components == "c1,c2"
            }),
            ("dapr.io/pluggable-components-sockets-folder", "/s", |a| {
                a.pluggable_components_sockets_folder == "/s"
            }),
            ("dapr.io/component-container", "{}", |a| {
                a.component_container == "{}"
            }),
            ("dapr.io/inject-pluggable-components", "true", |a| {
                a.inject_pluggable_components
            }),
            ("dapr.io/app-channel-address", "10.0.0.1", |a| {
                a.app_channel_address == "10.0.0.1"
            }),
            ("dapr.io/sentry-request-jwt-audiences", "aud", |a| {
                a.sentry_request_jwt_audiences == "aud"
            }),
            ("dapr.io/sidecar-svc-annotations", "a=b", |a| {
                a.sidecar_svc_annotations == "a=b"
            }),
            ("dapr.io/disable-init-endpoints", "healthz", |a| {
                a.disable_init_endpoints.as_deref() == Some("healthz")
            }),
            ("dapr.io/enable-native-sidecar", "true", |a| {
                a.enable_native_sidecar
            }),
        ];
        assert_eq!(table.len(), KEYS.len(), "a row for every annotation");
        for (key, value, check) in table {
            assert!(KEYS.contains(key), "{key} is read");
            let (a, warnings) = read(&[(key, value)]);
            assert!(warnings.is_empty(), "{key}: {warnings:?}");
            assert!(check(&a), "{key}={value:?} gave {a:#?}");
            assert_ne!(a, SidecarAnnotations::default(), "{key} changes something");
        }
    }

    #[test]
    fn a_number_that_does_not_parse_keeps_the_default_with_a_warning() {
        let (a, warnings) = read(&[
            ("dapr.io/app-port", "eighty"),
            ("dapr.io/metrics-port", "99999999999"),
            ("dapr.io/app-max-concurrency", "-"),
        ]);
        assert_eq!(a.app_port, 0);
        assert_eq!(a.metrics_port, 9090);
        assert_eq!(a.app_max_concurrency, None);
        let keys: Vec<&str> = warnings.iter().map(|w| w.key).collect();
        // In the order the settings are declared.
        assert_eq!(
            keys,
            [
                "dapr.io/app-port",
                "dapr.io/app-max-concurrency",
                "dapr.io/metrics-port"
            ]
        );
        assert_eq!(
            warnings[0].to_string(),
            "dapr.io/app-port: \"eighty\" is not an integer; the annotation is ignored"
        );
    }

    #[test]
    fn booleans_are_truthy_or_false() {
        for yes in ["y", "YES", "true", "T", "on", "1", " true "] {
            assert!(is_truthy(yes), "{yes:?}");
        }
        for no in ["", "false", "no", "0", "enabled", "tru"] {
            assert!(!is_truthy(no), "{no:?}");
        }
        let (a, _) = read(&[("dapr.io/enable-metrics", "nope")]);
        assert!(!a.enable_metrics, "present but not truthy is false");
    }

    #[test]
    fn an_empty_value_is_taken_as_given() {
        let (a, warnings) = read(&[
            ("dapr.io/log-level", ""),
            ("dapr.io/sidecar-listen-addresses", ""),
        ]);
        assert!(warnings.is_empty());
        assert_eq!(a.log_level, "");
        assert_eq!(a.listen_addresses, "");
    }
}
