//! Binding and serving the HTTP and gRPC API ports.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::api::{self, Api};
use crate::config::Flags;

/// The addresses actually bound (useful when a port of 0 was asked for).
#[derive(Debug, Clone, Default)]
pub struct Listening {
    pub http: Vec<SocketAddr>,
    pub grpc: Vec<SocketAddr>,
    pub public: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
    pub internal: Option<SocketAddr>,
}

pub struct Servers {
    pub listening: Listening,
    tasks: Vec<JoinHandle<()>>,
}

async fn bind(host: &str, port: u16) -> Result<TcpListener> {
    let addr = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    TcpListener::bind(&addr)
        .await
        .with_context(|| format!("listening on {addr}"))
}

impl Servers {
    pub async fn start(flags: &Flags, api: Arc<Api>, internal: TcpListener) -> Result<Self> {
        let mut listening = Listening::default();
        let mut tasks = Vec::new();
        let http_port = flags
            .http_port()
            .map_err(anyhow::Error::msg)?
            .unwrap_or(3500);
        let grpc_port = flags
            .grpc_port()
            .map_err(anyhow::Error::msg)?
            .unwrap_or(50001);
        for host in flags.listen_addresses() {
            let listener = bind(&host, http_port).await?;
            listening.http.push(listener.local_addr()?);
            tasks.push(serve_http(listener, api::http::router(api.clone()), &api));
            let listener = bind(&host, grpc_port).await?;
            listening.grpc.push(listener.local_addr()?);
            tasks.push(serve_grpc(listener, api.clone()));
        }
        listening.internal = Some(internal.local_addr()?);
        tracing::info!(
            "internal gRPC server listening on {}",
            internal.local_addr()?
        );
        tasks.push(serve_internal(internal, api.clone()));
        if let Some(port) = flags.public_port().map_err(anyhow::Error::msg)? {
            let host = if flags.dapr_public_listen_address.is_empty() {
                "0.0.0.0"
            } else {
                flags.dapr_public_listen_address.as_str()
            };
            let listener = bind(host, port).await?;
            listening.public = Some(listener.local_addr()?);
            tasks.push(serve_http(
                listener,
                api::http::public_router(api.clone()),
                &api,
            ));
        }
        if let Some(metrics) = api.metrics.clone() {
            let port: u16 = flags.metrics_port.trim().parse().map_err(|_| {
                anyhow::anyhow!("invalid value {:?} for --metrics-port", flags.metrics_port)
            })?;
            let listener = bind(&flags.metrics_listen_address, port).await?;
            listening.metrics = Some(listener.local_addr()?);
            tracing::info!("metrics server listening on {}", listener.local_addr()?);
            let router = axum::Router::new().fallback(axum::routing::get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                }
            }));
            tasks.push(serve_http(listener, router, &api));
        }
        for addr in &listening.http {
            tracing::info!("HTTP server listening on {addr}");
        }
        for addr in &listening.grpc {
            tracing::info!("gRPC API server listening on {addr}");
        }
        Ok(Self { listening, tasks })
    }

    /// Waits for every server to finish draining.
    pub async fn wait(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

fn serve_http(listener: TcpListener, router: axum::Router, api: &Arc<Api>) -> JoinHandle<()> {
    let mut stop = api.shutdown.subscribe();
    tokio::spawn(async move {
        // Without TCP_NODELAY a response written in two segments waits for the client's
        // delayed ACK: a 40 ms stall per request.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY: {e}");
            }
        });
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!("HTTP server failed: {e}");
        }
    })
}

/// The public gRPC API: Dapr's service, with proxying for any other service, metered.
fn serve_grpc(listener: TcpListener, api: Arc<Api>) -> JoinHandle<()> {
    let router = with_proxy(
        tonic::service::Routes::new(api::grpc::service(api.clone())),
        api::grpc::proxy::Proxy::new(api.clone(), false),
    )
    .layer(api::grpc::MeteredLayer(api.metrics.clone()));
    serve_tonic(listener, &api, "gRPC", tonic::service::Routes::from(router))
}

/// The internal gRPC API for other sidecars, with proxying on to our own app.
fn serve_internal(listener: TcpListener, api: Arc<Api>) -> JoinHandle<()> {
    let router = with_proxy(
        tonic::service::Routes::new(api::internal::service(api.clone())),
        api::grpc::proxy::Proxy::new(api.clone(), true),
    );
    serve_tonic(
        listener,
        &api,
        "internal gRPC",
        tonic::service::Routes::from(router),
    )
}

/// Serves `routes` until shutdown. Accepted connections get TCP_NODELAY: gRPC writes
/// headers, data and trailers separately, and without it each call would stall on the
/// client's delayed ACK.
fn serve_tonic(
    listener: TcpListener,
    api: &Arc<Api>,
    name: &'static str,
    routes: tonic::service::Routes,
) -> JoinHandle<()> {
    let mut stop = api.shutdown.subscribe();
    tokio::spawn(async move {
        let incoming = tokio_stream::StreamExt::map(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            |conn| {
                if let Ok(tcp) = &conn
                    && let Err(e) = tcp.set_nodelay(true)
                {
                    tracing::debug!("cannot set TCP_NODELAY: {e}");
                }
                conn
            },
        );
        let result = tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!("{name} server failed: {e}");
        }
    })
}

/// The given services, plus gRPC proxying for every other service name.
fn with_proxy(routes: tonic::service::Routes, proxy: api::grpc::proxy::Proxy) -> axum::Router {
    let fallback = axum::routing::any(api::grpc::proxy::forward).with_state(proxy);
    routes.into_axum_router().fallback_service(fallback)
}
