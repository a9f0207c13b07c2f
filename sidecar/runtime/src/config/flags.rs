//! `daprd`'s command line, flag for flag as Dapr's, and the checks Dapr runs on it.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser};

use super::error::FlagError;
use super::mode::{AppProtocol, Mode};
use super::quantity::parse_quantity;

/// Dapr's default body limit: 4Mi.
const DEFAULT_MAX_BODY: u64 = 4 * 1024 * 1024;

/// `daprd`'s flags. Every flag Dapr's daprd accepts is accepted here, so the Dapr CLI and
/// existing manifests can start this binary unchanged; flags whose feature has not landed
/// yet are parsed and reported by [`Flags::not_yet_honoured`].
#[derive(Debug, Parser)]
#[command(
    name = "daprd",
    disable_version_flag = true,
    allow_negative_numbers = true
)]
pub struct Flags {
    /// The id of the application this sidecar serves.
    #[arg(long, default_value = "")]
    pub app_id: String,
    /// Runtime mode: standalone or kubernetes.
    #[arg(long, default_value = "standalone")]
    pub mode: Mode,
    #[arg(long, default_value = "3500")]
    pub dapr_http_port: String,
    #[arg(long, default_value = "50001")]
    pub dapr_grpc_port: String,
    /// Comma-separated addresses the API servers listen on.
    #[arg(long, default_value = "")]
    pub dapr_listen_addresses: String,
    /// Port for healthz and metadata without a token; off unless set, as in Dapr.
    #[arg(long, default_value = "")]
    pub dapr_public_port: String,
    #[arg(long, default_value = "")]
    pub dapr_public_listen_address: String,
    #[arg(long, default_value = "")]
    pub dapr_internal_grpc_port: String,
    #[arg(long, default_value = "")]
    pub dapr_internal_grpc_listen_address: String,
    #[arg(long, default_value = "")]
    pub app_port: String,
    /// http, https, grpc, grpcs or h2c, in any case.
    #[arg(long, default_value = "http")]
    pub app_protocol: AppProtocol,
    #[arg(long, default_value = "127.0.0.1")]
    pub app_channel_address: String,
    #[arg(long, default_value = "-1")]
    pub app_max_concurrency: i64,
    /// Resource folders (repeatable, or comma separated).
    #[arg(long, value_delimiter = ',')]
    pub resources_path: Vec<PathBuf>,
    /// Deprecated alias of `--resources-path`.
    #[arg(long, default_value = "")]
    pub components_path: String,
    /// Configuration file(s).
    #[arg(long, value_delimiter = ',')]
    pub config: Vec<PathBuf>,
    #[arg(long, default_value = "info")]
    pub log_level: String,
    #[arg(long, default_value = "")]
    pub log_file: String,
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub log_as_json: bool,
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub enable_api_logging: bool,
    #[arg(long, default_value = "9090")]
    pub metrics_port: String,
    #[arg(long, default_value = "0.0.0.0")]
    pub metrics_listen_address: String,
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "true", default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub enable_metrics: bool,
    /// Largest request body, as a quantity (`4Mi`).
    #[arg(long, default_value = "4Mi")]
    pub max_body_size: String,
    /// Deprecated: request body limit in MB.
    #[arg(long)]
    pub dapr_http_max_request_size: Option<i64>,
    #[arg(long, default_value = "4Ki")]
    pub read_buffer_size: String,
    #[arg(long)]
    pub dapr_http_read_buffer_size: Option<i64>,
    #[arg(long, default_value = "5")]
    pub dapr_graceful_shutdown_seconds: i64,
    #[arg(long, default_value = "")]
    pub dapr_block_shutdown_duration: String,
    /// Print the bare runtime version and exit.
    #[arg(long, action = ArgAction::SetTrue)]
    pub version: bool,
    #[arg(long, action = ArgAction::SetTrue)]
    pub build_info: bool,
    #[arg(long, action = ArgAction::SetTrue)]
    pub wait: bool,

    // Flags of features that arrive with later issues: accepted now.
    #[arg(long, default_value = "")]
    pub placement_host_address: String,
    #[arg(long, value_delimiter = ',')]
    pub scheduler_host_address: Vec<String>,
    #[arg(long, default_value = "3")]
    pub scheduler_job_streams: u32,
    #[arg(long, default_value = "")]
    pub sentry_address: String,
    #[arg(long, default_value = "")]
    pub control_plane_address: String,
    /// Unless given, from `DAPR_CONTROLPLANE_TRUST_DOMAIN`, which the injector sets.
    #[arg(
        long,
        env = "DAPR_CONTROLPLANE_TRUST_DOMAIN",
        default_value = "localhost"
    )]
    pub control_plane_trust_domain: String,
    /// Unless given, from `DAPR_CONTROLPLANE_NAMESPACE`, which the injector sets.
    #[arg(long, env = "DAPR_CONTROLPLANE_NAMESPACE", default_value = "default")]
    pub control_plane_namespace: String,
    #[arg(long, value_delimiter = ',')]
    pub sentry_request_jwt_audiences: Vec<String>,
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub enable_mtls: bool,
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub enable_profiling: bool,
    #[arg(long, default_value = "7777")]
    pub profile_port: String,
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub app_ssl: bool,
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub enable_app_health_check: bool,
    #[arg(long, default_value = "/healthz")]
    pub app_health_check_path: String,
    #[arg(long, default_value = "5")]
    pub app_health_probe_interval: i64,
    #[arg(long, default_value = "500")]
    pub app_health_probe_timeout: i64,
    #[arg(long, default_value = "3")]
    pub app_health_threshold: i64,
    #[arg(long, default_value = "")]
    pub unix_domain_socket: String,
    /// CORS origins, comma-separated; `*` (the default) allows any.
    #[arg(long, default_value = "*")]
    pub allowed_origins: String,
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub disable_builtin_k8s_secret_store: bool,
    #[arg(long, value_delimiter = ',')]
    pub disable_init_endpoints: Vec<String>,
    #[arg(long, default_value = "30s")]
    pub actors_disseminate_timeout: String,
    #[arg(long, default_value = "0")]
    pub hot_reload_reconcile_interval: String,
    #[arg(long, default_value = "3s")]
    pub app_binding_options_timeout: String,
    #[arg(long, default_value = "", hide = true)]
    pub reminders_service: String,
    #[arg(long, default_value = "", hide = true)]
    pub actors_service: String,
    /// Older Dapr CLIs pass an empty argument in place of flags a runtime lacks.
    #[arg(hide = true)]
    pub stray: Vec<String>,
}

/// Parses the process arguments (program name first).
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Flags, clap::Error> {
    let flags = Flags::try_parse_from(kit::args::go_style(args))?;
    if let Some(bad) = flags.stray.iter().find(|s| !s.trim().is_empty()) {
        return Err(clap::Error::raw(
            clap::error::ErrorKind::UnknownArgument,
            format!("unexpected argument '{bad}'\n"),
        ));
    }
    Ok(flags)
}

/// A port flag: empty, `0` or negative means "not set".
fn port(raw: &str, flag: &'static str) -> Result<Option<u16>, FlagError> {
    let raw = raw.trim();
    if raw.is_empty() || raw.starts_with('-') || raw == "0" {
        return Ok(None);
    }
    raw.parse::<u16>()
        .map(Some)
        .map_err(|source| FlagError::Port {
            flag,
            value: raw.to_string(),
            source,
        })
}

/// A byte count for `flag`, which must fit in memory.
fn size(bytes: u64, flag: &'static str) -> Result<usize, FlagError> {
    usize::try_from(bytes).map_err(|source| FlagError::TooLarge { flag, source })
}

/// A quantity flag (`4Mi`).
fn quantity(raw: &str, flag: &'static str) -> Result<u64, FlagError> {
    parse_quantity(raw).ok_or_else(|| FlagError::Quantity {
        flag,
        value: raw.to_string(),
    })
}

impl Flags {
    pub fn http_port(&self) -> Result<Option<u16>, FlagError> {
        port(&self.dapr_http_port, "dapr-http-port")
    }

    pub fn grpc_port(&self) -> Result<Option<u16>, FlagError> {
        port(&self.dapr_grpc_port, "dapr-grpc-port")
    }

    pub fn public_port(&self) -> Result<Option<u16>, FlagError> {
        port(&self.dapr_public_port, "dapr-public-port")
    }

    pub fn app_port(&self) -> Result<Option<u16>, FlagError> {
        port(&self.app_port, "app-port")
    }

    /// Addresses the API servers bind: `--dapr-listen-addresses`, all interfaces by default.
    pub fn listen_addresses(&self) -> Vec<String> {
        let list: Vec<String> = self
            .dapr_listen_addresses
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if list.is_empty() {
            vec!["0.0.0.0".to_string()]
        } else {
            list
        }
    }

    /// `--resources-path`, or the deprecated `--components-path` when it is not given.
    pub fn resource_dirs(&self) -> Vec<PathBuf> {
        if !self.resources_path.is_empty() {
            return self.resources_path.clone();
        }
        if self.components_path.trim().is_empty() {
            return Vec::new();
        }
        vec![PathBuf::from(self.components_path.trim())]
    }

    /// The request body limit in bytes: `--max-body-size`, falling back to the deprecated
    /// `--dapr-http-max-request-size` (MB) only when the former is left at its default.
    pub fn max_body_bytes(&self) -> Result<usize, FlagError> {
        const FLAG: &str = "max-body-size";
        let raw = self.max_body_size.trim();
        let from_quantity = if raw == "-1" {
            DEFAULT_MAX_BODY
        } else {
            quantity(raw, FLAG)?
        };
        let bytes = match self.dapr_http_max_request_size {
            Some(mb) if mb > 0 && raw == "4Mi" => (mb as u64) * 1024 * 1024,
            _ => from_quantity,
        };
        size(bytes, FLAG)
    }

    /// `--read-buffer-size` in bytes, falling back to the deprecated
    /// `--dapr-http-read-buffer-size` (KB) when the former is left at its default.
    pub fn read_buffer_bytes(&self) -> Result<usize, FlagError> {
        const FLAG: &str = "read-buffer-size";
        let raw = self.read_buffer_size.trim();
        let bytes = match self.dapr_http_read_buffer_size {
            Some(kb) if kb > 0 && raw == "4Ki" => (kb as u64) * 1024,
            _ if raw == "-1" => 4096,
            _ => quantity(raw, FLAG)?,
        };
        size(bytes, FLAG)
    }

    pub fn graceful_shutdown(&self) -> std::time::Duration {
        let secs = if self.dapr_graceful_shutdown_seconds < 0 {
            5
        } else {
            self.dapr_graceful_shutdown_seconds
        };
        std::time::Duration::from_secs(secs as u64)
    }

    /// Checks what Dapr checks before starting (`--mode` and `--app-protocol` are
    /// already checked by parsing).
    pub fn validate(&self) -> Result<(), FlagError> {
        if self.app_id.is_empty() {
            return Err(FlagError::EmptyAppId);
        }
        if self.app_id.contains('.') {
            return Err(FlagError::DottedAppId);
        }
        let app = self.app_port()?;
        for (flag, p) in [
            ("dapr-http-port", self.http_port()?),
            ("dapr-grpc-port", self.grpc_port()?),
        ] {
            if let (Some(a), Some(port)) = (app, p)
                && a == port
            {
                return Err(FlagError::PortConflict { flag, port });
            }
        }
        self.public_port()?;
        self.max_body_bytes()?;
        self.read_buffer_bytes()?;
        Ok(())
    }

    /// Flags that were given but whose feature is not built yet, to be logged at startup.
    pub fn not_yet_honoured(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut note = |set: bool, name: &'static str| {
            if set {
                out.push(name)
            }
        };
        note(
            !self.placement_host_address.is_empty(),
            "--placement-host-address",
        );
        note(
            self.scheduler_host_address.iter().any(|s| !s.is_empty()),
            "--scheduler-host-address",
        );
        note(self.enable_profiling, "--enable-profiling");
        note(!self.unix_domain_socket.is_empty(), "--unix-domain-socket");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Flags {
        let mut all = vec!["daprd".to_string()];
        all.extend(args.iter().map(|s| s.to_string()));
        parse_args(all).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn defaults_match_dapr() {
        let f = parse(&["--app-id", "a"]);
        assert_eq!(f.http_port(), Ok(Some(3500)));
        assert_eq!(f.grpc_port(), Ok(Some(50001)));
        assert_eq!(f.public_port(), Ok(None));
        assert_eq!(f.max_body_bytes(), Ok(4 * 1024 * 1024));
        assert_eq!(f.graceful_shutdown().as_secs(), 5);
        assert!(f.enable_metrics);
        assert_eq!(f.log_level, "info");
        assert_eq!(f.listen_addresses(), ["0.0.0.0"]);
        assert!(f.validate().is_ok());
    }

    /// The exact argument list `dapr run` builds (dapr/cli pkg/standalone/run.go).
    #[test]
    fn accepts_what_the_dapr_cli_passes() {
        let f = parse(&[
            "--config",
            "/root/.dapr/config.yaml",
            "--app-protocol",
            "http",
            "--log-level",
            "info",
            "--app-max-concurrency",
            "-1",
            "--placement-host-address",
            "localhost:50005",
            "--components-path",
            "/root/.dapr/components",
            "--max-body-size",
            "4Mi",
            "--read-buffer-size",
            "4Ki",
            "--scheduler-host-address",
            "localhost:50006",
            "--app-id",
            "myapp",
            "--app-port",
            "0",
            "--dapr-http-port",
            "41001",
            "--dapr-grpc-port",
            "41002",
            "--profile-port",
            "-1",
            "--metrics-port",
            "41003",
            "--dapr-internal-grpc-port",
            "41004",
            "--enable-app-health-check",
            "--app-health-check-path",
            "/health",
            "--enable-api-logging",
            "--enable-mtls",
            "--sentry-address",
            "localhost:50001",
            "--log-as-json",
            "--app-ssl",
            "--enable-profiling",
            "",
        ]);
        assert_eq!(f.app_id, "myapp");
        assert_eq!(f.app_port(), Ok(None));
        assert_eq!(f.http_port(), Ok(Some(41001)));
        assert_eq!(f.resource_dirs(), [PathBuf::from("/root/.dapr/components")]);
        assert!(
            f.enable_api_logging && f.log_as_json && f.enable_mtls && f.enable_app_health_check
        );
        assert!(f.validate().is_ok());
    }

    #[test]
    fn go_style_flags_and_booleans() {
        let f = parse(&[
            "-app-id",
            "x",
            "--enable-metrics=false",
            "-log-as-json=true",
            "--resources-path",
            "a,b",
        ]);
        assert_eq!(f.app_id, "x");
        assert!(!f.enable_metrics);
        assert!(f.log_as_json);
        assert_eq!(f.resource_dirs(), [PathBuf::from("a"), PathBuf::from("b")]);
        let f = parse(&[
            "--app-id",
            "x",
            "--resources-path",
            "a",
            "--resources-path",
            "b",
            "--components-path",
            "c",
        ]);
        assert_eq!(f.resource_dirs(), [PathBuf::from("a"), PathBuf::from("b")]);
    }

    #[test]
    fn refuses_what_dapr_refuses() {
        assert!(parse(&[]).validate().is_err());
        assert!(parse(&["--app-id", "a.b"]).validate().is_err());
        let bad_protocol =
            parse_args(["daprd", "--app-id", "a", "--app-protocol", "ftp"].map(String::from))
                .expect_err("refused while parsing");
        assert!(
            bad_protocol
                .to_string()
                .contains("invalid value for 'app-protocol': ftp"),
            "{bad_protocol}"
        );
        assert!(
            parse(&["--app-id", "a", "--app-port", "3500"])
                .validate()
                .is_err()
        );
        assert!(
            parse(&["--app-id", "a", "--max-body-size", "lots"])
                .validate()
                .is_err()
        );
        assert!(
            parse(&["--app-id", "a", "--dapr-http-port", "99999"])
                .validate()
                .is_err()
        );
        assert!(parse_args(["daprd", "--no-such-flag"].map(String::from)).is_err());
        assert!(parse_args(["daprd", "--app-id", "a", "junk"].map(String::from)).is_err());
    }

    #[test]
    fn mode_and_protocol_are_typed() {
        let f = parse(&["--app-id", "a"]);
        assert_eq!(
            (f.mode, f.app_protocol),
            (Mode::Standalone, AppProtocol::Http)
        );
        let f = parse(&[
            "-app-id",
            "a",
            "-mode",
            "kubernetes",
            "-app-protocol",
            "GRPC",
        ]);
        assert_eq!(
            (f.mode, f.app_protocol),
            (Mode::Kubernetes, AppProtocol::Grpc)
        );
        let f = parse(&["--app-id", "a", "--app-protocol=h2c"]);
        assert_eq!(f.app_protocol, AppProtocol::H2c);
        let bad = parse_args(["daprd", "--mode", "cloud"].map(String::from)).expect_err("bad");
        assert!(bad.to_string().contains("invalid value for 'mode': cloud"));
    }

    #[test]
    fn errors_keep_their_cause() {
        let e = parse(&["--app-id", "a", "--app-port", "http"])
            .validate()
            .expect_err("not a port");
        assert_eq!(e.to_string(), r#"invalid value "http" for --app-port"#);
        assert!(matches!(
            e,
            FlagError::Port {
                flag: "app-port",
                ..
            }
        ));
        assert!(std::error::Error::source(&e).is_some());
        let e = parse(&["--app-id", "a", "--app-port", "3500"])
            .validate()
            .expect_err("conflict");
        assert_eq!(
            e.to_string(),
            "the 'dapr-http-port' argument value 3500 conflicts with 'app-port'"
        );
        let e = parse(&["--app-id", "a", "--read-buffer-size", "4Xi"])
            .read_buffer_bytes()
            .expect_err("not a quantity");
        assert_eq!(
            e.to_string(),
            r#"invalid value "4Xi" for --read-buffer-size"#
        );
    }

    #[test]
    fn body_size_flags() {
        assert_eq!(
            parse(&["--app-id", "a", "--max-body-size", "1Mi"]).max_body_bytes(),
            Ok(1 << 20)
        );
        assert_eq!(
            parse(&["--app-id", "a", "--dapr-http-max-request-size", "2"]).max_body_bytes(),
            Ok(2 << 20)
        );
        assert_eq!(
            parse(&["--app-id", "a", "--max-body-size", "-1"]).max_body_bytes(),
            Ok(4 << 20)
        );
    }
}
