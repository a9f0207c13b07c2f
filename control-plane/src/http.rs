//! The small HTTP servers every control-plane binary has beside its API: healthz for the
//! kubelet's probes and Prometheus metrics, on their own ports as in Dapr.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use thiserror::Error;
use tokio::net::TcpListener;

use crate::Shutdown;

#[derive(Debug, Error)]
pub enum BindError {
    #[error("invalid {what} address {address:?}")]
    Address {
        what: &'static str,
        address: String,
        #[source]
        source: std::net::AddrParseError,
    },
    #[error("listening on {addr} ({what})")]
    Listen {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds `address:port`; an empty address means every interface, as Dapr's
/// `--*-listen-address` flags do.
pub async fn bind(address: &str, port: u16, what: &'static str) -> Result<TcpListener, BindError> {
    let host = if address.is_empty() {
        "0.0.0.0"
    } else {
        address
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = host
        .parse::<std::net::IpAddr>()
        .or_else(|e| {
            if host == "localhost" {
                Ok([127, 0, 0, 1].into())
            } else {
                Err(e)
            }
        })
        .map_err(|source| BindError::Address {
            what,
            address: address.to_string(),
            source,
        })?;
    let addr = SocketAddr::new(ip, port);
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError::Listen { what, addr, source })
}

/// Serves `router` until shutdown.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: Shutdown,
) -> Result<(), std::io::Error> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.wait())
        .await
}

/// `/healthz`, answering 200 while `ready()` holds and 503 before.
pub fn healthz(ready: impl Fn() -> bool + Clone + Send + Sync + 'static) -> Router {
    Router::new().route(
        "/healthz",
        get(move || {
            let ok = ready();
            async move {
                if ok {
                    axum::http::StatusCode::OK
                } else {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    )
}

/// Prometheus text exposition of what `render` writes, at `/metrics` and `/`.
pub fn metrics(render: impl Fn() -> String + Clone + Send + Sync + 'static) -> Router {
    let handler = move || {
        let body = render();
        async move {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                body,
            )
        }
    };
    Router::new()
        .route("/", get(handler.clone()))
        .route("/metrics", get(handler))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn healthz_follows_readiness_and_metrics_are_prometheus_text() {
        let listener = bind("127.0.0.1", 0, "test").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let ready = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ready.clone();
        let router = healthz(move || flag.load(std::sync::atomic::Ordering::SeqCst))
            .merge(metrics(|| "up 1\n".to_string()));
        let shutdown = Shutdown::default();
        let server = tokio::spawn(serve(listener, router, shutdown.clone()));
        let http = reqwest::Client::new();
        let get = |path: &str| http.get(format!("http://{addr}{path}")).send();
        assert_eq!(get("/healthz").await.expect("get").status(), 503);
        ready.store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(get("/healthz").await.expect("get").status(), 200);
        let m = get("/metrics").await.expect("get");
        assert_eq!(
            m.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        assert_eq!(m.text().await.expect("body"), "up 1\n");
        shutdown.stop();
        server.await.expect("join").expect("served until shutdown");
    }

    #[tokio::test]
    async fn bad_addresses_are_named() {
        let err = bind("not-an-ip", 0, "healthz").await.expect_err("refused");
        assert_eq!(err.to_string(), "invalid healthz address \"not-an-ip\"");
    }
}
