//! Binding and serving the HTTP and gRPC API ports.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Flags;
use api::{self, Api};

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
        let http_port = flags.http_port()?.unwrap_or(3500);
        let grpc_port = flags.grpc_port()?.unwrap_or(50001);
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
        tasks.push(serve_internal(internal, api.clone())?);
        if let Some(port) = flags.public_port()? {
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

/// Serves an HTTP router (HTTP/1.1 and h2c) until shutdown, then lets in-flight requests
/// finish. Like Dapr's server: headers must arrive within 10 s and fit in the read buffer
/// (`--read-buffer-size`, at least hyper's 8 KiB minimum). Accepted connections get
/// TCP_NODELAY, without which a response written in two segments waits for the client's
/// delayed ACK: a 40 ms stall per request.
fn serve_http(listener: TcpListener, router: axum::Router, api: &Arc<Api>) -> JoinHandle<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    let mut stop = api.shutdown.subscribe();
    let read_buffer = api.read_buffer_size.max(8192);
    tokio::spawn(async move {
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(std::time::Duration::from_secs(10))
            .max_buf_size(read_buffer);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            tracing::warn!("HTTP server: accept failed: {e}");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!("cannot set TCP_NODELAY: {e}");
                    }
                    let router = router.clone();
                    let service = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                        let router = router.clone();
                        // The caller's address, for the request's span.
                        req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                        async move {
                            if let Some(frame) = crate::h2c::replayable_upgrade(&req) {
                                return Ok(crate::h2c::upgrade(req, frame, router));
                            }
                            tower::ServiceExt::oneshot(router, req).await
                        }
                    });
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service).into_owned();
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                () = &mut stopped => break,
            }
        }
        drop(listener);
        graceful.shutdown().await;
    })
}

/// The public gRPC API: Dapr's service, with proxying for any other service, metered.
fn serve_grpc(listener: TcpListener, api: Arc<Api>) -> JoinHandle<()> {
    let router = with_proxy(
        tonic::service::Routes::new(api::grpc::service(api.clone())),
        api::grpc::proxy::Proxy::new(api.clone(), false),
    )
    .layer(api::grpc::MeteredLayer(api.metrics.clone()))
    .layer(traced(&api));
    serve_tonic(listener, &api, "gRPC", tonic::service::Routes::from(router))
}

/// The internal gRPC API for other sidecars, with proxying on to our own app; under mTLS
/// only callers with a certificate from the trust anchors get past the handshake.
fn serve_internal(listener: TcpListener, api: Arc<Api>) -> Result<JoinHandle<()>> {
    let router = with_proxy(
        tonic::service::Routes::new(api::internal::service(api.clone())),
        api::grpc::proxy::Proxy::new(api.clone(), true),
    )
    .layer(traced(&api));
    let routes = tonic::service::Routes::from(router);
    Ok(match api.invoke.mtls() {
        Some(mtls) => {
            let incoming = security::tls::accept_stream(listener, mtls.server_config()?);
            serve_incoming(incoming, &api, "internal gRPC (mTLS)", routes)
        }
        None => serve_tonic(listener, &api, "internal gRPC", routes),
    })
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
    serve_incoming(incoming, api, name, routes)
}

/// Serves `routes` on already accepted connections until shutdown.
fn serve_incoming<I, IO, IE>(
    incoming: I,
    api: &Arc<Api>,
    name: &'static str,
    routes: tonic::service::Routes,
) -> JoinHandle<()>
where
    I: futures::Stream<Item = std::result::Result<IO, IE>> + Send + 'static,
    IO: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + tonic::transport::server::Connected
        + Unpin
        + Send
        + 'static,
    IO::ConnectInfo: Clone + Send + Sync + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut stop = api.shutdown.subscribe();
    tokio::spawn(async move {
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

/// Every gRPC call's span.
fn traced(api: &Api) -> api::grpc::spans::TracedLayer {
    api::grpc::spans::TracedLayer {
        tracer: api.tracer.clone(),
        app_id: std::sync::Arc::from(api.invoke.app_id()),
    }
}

/// The given services, plus gRPC proxying for every other service name.
fn with_proxy(routes: tonic::service::Routes, proxy: api::grpc::proxy::Proxy) -> axum::Router {
    let fallback = axum::routing::any(api::grpc::proxy::forward).with_state(proxy);
    routes.into_axum_router().fallback_service(fallback)
}
