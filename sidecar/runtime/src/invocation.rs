//! Setting up service invocation: the internal gRPC listener, this sidecar's registration
//! in name resolution, and the channel to the app.

use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::config::{AppProtocol, Env, Flags, Mode, stable_port};
use crate::resources::{Configuration, DaprResource, HTTPEndpoint};
use blocks::invoke::InvokeBlock;
use channel::{AppChannel, AppHealth, GrpcChannel, HealthProbe, HttpChannel, Protocol};
use components_core::Properties;
use components_core::nameresolution::{Instance, Resolver};
use components_core::{Registry, ResolverInit};
use resiliency::Policies;

pub struct Invocation {
    pub block: InvokeBlock,
    /// The channel to the app, when there is one (`--app-port`).
    pub app: Option<Arc<AppChannel>>,
    /// The app's health when health checks are on (it then gates readiness).
    pub app_health: Option<Arc<AppHealth>>,
    /// The resolver that announced this sidecar, to withdraw it on shutdown.
    pub registration: Arc<dyn Resolver>,
}

/// Binds `--dapr-internal-grpc-port`, or Dapr's stable port for this app when unset.
pub async fn bind_internal(flags: &Flags) -> Result<TcpListener> {
    let port = match flags.dapr_internal_grpc_port.trim() {
        "" | "0" => stable_port(47300, &flags.app_id),
        p => p
            .parse()
            .with_context(|| format!("invalid value {p:?} for --dapr-internal-grpc-port"))?,
    };
    // `[::1]` as Dapr's flags write IPv6; the socket wants it bare.
    let host = match flags.dapr_internal_grpc_listen_address.trim() {
        "" => "0.0.0.0",
        h => h.trim_start_matches('[').trim_end_matches(']'),
    };
    TcpListener::bind((host, port))
        .await
        .with_context(|| format!("listening on {host}:{port} (internal gRPC)"))
}

/// Name resolution as the Configuration's `spec.nameResolution` selects it. Without one:
/// Kubernetes DNS in Kubernetes mode, mDNS otherwise (Dapr's defaults). The resolver also
/// announces this sidecar, and withdraws it on shutdown.
async fn resolver(
    flags: &Flags,
    registry: &Registry,
    config: &Configuration,
    me: Instance,
) -> Result<Arc<dyn Resolver>> {
    let spec = config.spec.name_resolution.as_ref();
    let component = spec.map_or("", |s| s.component.as_str());
    let settings: Vec<(String, String)> = spec
        .and_then(|s| s.configuration.as_ref())
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let component = match component {
        "" if flags.mode == Mode::Kubernetes => "kubernetes",
        "" => "mdns",
        c => c,
    };
    let init = ResolverInit {
        properties: Properties::new(settings),
        instance: me,
    };
    registry
        .create_resolver(component, init)
        .await
        .with_context(|| format!("starting {component} name resolution"))
}

/// The host other sidecars are told to call, and whether it is pinned: `DAPR_HOST_IP`
/// when set (even a loopback one), else the internal listen address when it is a loopback
/// one (a sidecar bound to `127.0.0.1` is reachable nowhere else), else `127.0.0.1`
/// unpinned, which mDNS replaces with each interface's address.
fn announced_host(env: &Env, listen: &str) -> (String, bool) {
    if let Some(ip) = &env.host_ip {
        return (
            ip.trim_start_matches('[').trim_end_matches(']').to_string(),
            true,
        );
    }
    let listen = listen.trim().trim_start_matches('[').trim_end_matches(']');
    if listen.eq_ignore_ascii_case("localhost") {
        return ("127.0.0.1".into(), true);
    }
    match listen.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_loopback() => (ip.to_string(), true),
        _ => ("127.0.0.1".into(), false),
    }
}

/// What service invocation is built from.
pub struct Inputs<'a> {
    pub flags: &'a Flags,
    pub env: &'a Env,
    pub registry: &'a Registry,
    pub config: &'a Configuration,
    pub internal_port: u16,
    pub max_body: usize,
    pub policies: Policies,
    pub http_endpoints: &'a [HTTPEndpoint],
    pub mtls: Option<Arc<channel::mtls::Mtls>>,
}

pub async fn setup(inputs: Inputs<'_>) -> Result<Invocation> {
    let Inputs {
        flags,
        env,
        registry,
        config,
        internal_port,
        max_body,
        policies,
        http_endpoints,
        mtls,
    } = inputs;
    let namespace = env.namespace().to_string();
    let access = blocks::access::AccessControl::from_spec(config.spec.access_control.as_ref());
    let (host, pinned) = announced_host(env, &flags.dapr_internal_grpc_listen_address);
    let address = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]:{internal_port}"),
        _ => format!("{host}:{internal_port}"),
    };
    let me = Instance {
        app_id: flags.app_id.clone(),
        namespace: namespace.clone(),
        address,
        pinned,
    };
    let resolver = resolver(flags, registry, config, me).await?;
    let app = match flags.app_port()? {
        None => None,
        Some(port) => Some(app_channel(flags, env, port, max_body)?),
    };
    let app_health = if flags.enable_app_health_check {
        app.as_ref().map(|a| a.health().clone())
    } else {
        None
    };
    Ok(Invocation {
        app_health,
        app: app.clone(),
        block: InvokeBlock::new(
            flags.app_id.clone(),
            namespace,
            app,
            Some(resolver.clone()),
            max_body,
            policies,
        )
        .with_endpoints(endpoints(http_endpoints, max_body))
        .with_mtls(mtls)
        .with_access_control(access),
        registration: resolver,
    })
}

/// The channel to the app for `--app-protocol`, with health probes when asked for.
fn app_channel(flags: &Flags, env: &Env, port: u16, max_body: usize) -> Result<Arc<AppChannel>> {
    let host = &flags.app_channel_address;
    let token = env.app_api_token.as_deref();
    let protocol = match flags.app_protocol {
        AppProtocol::Http => Protocol::Http(HttpChannel::new(
            host,
            port,
            false,
            flags.app_ssl,
            token,
            max_body,
        )?),
        AppProtocol::Https => {
            Protocol::Http(HttpChannel::new(host, port, false, true, token, max_body)?)
        }
        AppProtocol::H2c => {
            Protocol::Http(HttpChannel::new(host, port, true, false, token, max_body)?)
        }
        AppProtocol::Grpc => Protocol::Grpc(GrpcChannel::new(
            host,
            port,
            flags.app_ssl,
            token,
            max_body,
        )?),
        AppProtocol::Grpcs => Protocol::Grpc(GrpcChannel::new(host, port, true, token, max_body)?),
    };
    let concurrency = usize::try_from(flags.app_max_concurrency).ok();
    let channel = Arc::new(AppChannel::new(
        protocol,
        concurrency,
        Arc::new(AppHealth::default()),
    ));
    if flags.enable_app_health_check {
        let secs = |v: i64, default: u64| if v > 0 { v as u64 } else { default };
        HealthProbe {
            path: flags.app_health_check_path.clone(),
            interval: std::time::Duration::from_secs(secs(flags.app_health_probe_interval, 5)),
            timeout: std::time::Duration::from_millis(secs(flags.app_health_probe_timeout, 500)),
            threshold: u32::try_from(flags.app_health_threshold)
                .unwrap_or(3)
                .max(1),
        }
        .spawn(&channel);
    }
    Ok(channel)
}

/// The channels to `HTTPEndpoint` resources. Header values given as `secretKeyRef` wait
/// for secret stores, like components do; `https` endpoints wait for TLS to endpoints.
fn endpoints(
    specs: &[HTTPEndpoint],
    max_body: usize,
) -> std::collections::HashMap<String, Arc<blocks::invoke::Endpoint>> {
    let mut out = std::collections::HashMap::new();
    for e in specs {
        let spec = &e.spec.spec;
        if spec.base_url.starts_with("https://") || spec.client_tls.is_some() {
            tracing::warn!(
                "HTTPEndpoint {}: TLS to endpoints is not supported yet; calls will fail",
                e.name()
            );
        }
        let mut headers = http::HeaderMap::new();
        for h in &spec.headers {
            let value = match (h.value_string(), h.has_secret_key_ref()) {
                (Some(v), _) => v,
                (None, true) => {
                    tracing::warn!(
                        "HTTPEndpoint {}: header {} needs a secret store; not sent",
                        e.name(),
                        h.name
                    );
                    continue;
                }
                (None, false) => String::new(),
            };
            match (
                http::HeaderName::try_from(h.name.as_str()),
                http::HeaderValue::try_from(value),
            ) {
                (Ok(n), Ok(v)) => {
                    headers.append(n, v);
                }
                _ => tracing::warn!("HTTPEndpoint {}: invalid header {}", e.name(), h.name),
            }
        }
        let tls = client_tls(e);
        let channel = match channel::HttpChannel::external(&spec.base_url, &tls, max_body) {
            Ok(c) => c,
            Err(err) => {
                tracing::warn!("HTTPEndpoint {}: {err}", e.name());
                continue;
            }
        };
        tracing::info!("HTTPEndpoint loaded: {} ({})", e.name(), spec.base_url);
        out.insert(
            e.name().to_string(),
            Arc::new(blocks::invoke::Endpoint { channel, headers }),
        );
    }
    out
}

/// The inline PEM values of `clientTLS` (`rootCA`, `certificate`, `privateKey`); values
/// from secret stores wait for secret stores, like other `secretKeyRef`s.
fn client_tls(e: &HTTPEndpoint) -> channel::EndpointTls {
    let tls = e.spec.spec.client_tls.as_ref();
    let field = |name: &str, doc: Option<&crds::TlsDocument>| -> Option<String> {
        let doc = doc?;
        if doc.secret_key_ref.is_some() {
            tracing::warn!(
                "HTTPEndpoint {}: clientTLS.{name} needs a secret store; not used",
                e.name()
            );
        }
        doc.value
            .as_ref()
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    channel::EndpointTls {
        root_ca: field("rootCA", tls.and_then(|t| t.root_ca.as_ref())),
        certificate: field("certificate", tls.and_then(|t| t.certificate.as_ref())),
        private_key: field("privateKey", tls.and_then(|t| t.private_key.as_ref())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_announced_host_is_the_host_ip_or_a_loopback_listen_address() {
        let env = |ip: Option<&str>| Env {
            host_ip: ip.map(str::to_string),
            ..Env::default()
        };
        let cases = [
            (None, "", ("127.0.0.1", false)),
            (None, "0.0.0.0", ("127.0.0.1", false)),
            (None, "127.0.0.1", ("127.0.0.1", true)),
            (None, "127.0.0.5", ("127.0.0.5", true)),
            (None, "localhost", ("127.0.0.1", true)),
            (None, "[::1]", ("::1", true)),
            (None, "10.1.2.3", ("127.0.0.1", false)),
            (Some("127.0.0.1"), "0.0.0.0", ("127.0.0.1", true)),
            (Some("10.9.8.7"), "127.0.0.1", ("10.9.8.7", true)),
        ];
        for (ip, listen, (host, pinned)) in cases {
            assert_eq!(
                announced_host(&env(ip), listen),
                (host.to_string(), pinned),
                "DAPR_HOST_IP {ip:?}, listen {listen:?}"
            );
        }
    }
}
