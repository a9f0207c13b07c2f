//! The lean clients both benchmarks drive their HTTP and gRPC load with: one connection each,
//! from hyper's low-level `client::conn` API, so the per-request client work is the request
//! itself and is the same whichever server answers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tonic::codegen::Service;

/// HTTP/1.1 keep-alive connection driven by hyper's low-level `client::conn` API. Chosen
/// over reqwest and hyper-util's pooled legacy client because it has the least client-side
/// work per request (no pool lookup, no URI/host resolution, no extra layers), and it
/// guarantees a closed loop really uses exactly one connection.
pub struct HttpConnection {
    pub sender: http1::SendRequest<Full<Bytes>>,
}

impl HttpConnection {
    pub async fn open(port: u16) -> Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .with_context(|| format!("cannot connect to HTTP port {port}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        // The connection task ends when `sender` is dropped.
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("HTTP connection to port {port} failed: {e}");
            }
        });
        Ok(Self { sender })
    }
}

/// The gRPC counterpart of [`HttpConnection`]: an HTTP/2 connection from hyper's low-level
/// `client::conn::http2`, used as the tower service under tonic's clients (which still do
/// the gRPC framing, protobuf coding and status/trailer handling).
///
/// A `tonic::transport::Channel` puts every call through a tower `Buffer`: the caller hands
/// the request to the buffer's worker task, which hands it to the connection task, and the
/// response travels back the same way, so each call costs two task hops and, on a 2-core
/// machine, cross-thread wake-ups. Here the caller talks to the connection task directly,
/// one hop, exactly as the HTTP/1.1 client does, so both protocols are measured with
/// equally thin clients.
#[derive(Clone)]
pub struct H2Connection {
    sender: http2::SendRequest<tonic::body::Body>,
}

impl H2Connection {
    pub async fn open(port: u16) -> Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .with_context(|| format!("cannot connect to gRPC port {port}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
        // The connection task ends when the last clone of `sender` is dropped.
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("gRPC connection to port {port} failed: {e}");
            }
        });
        Ok(Self { sender })
    }
}

impl Service<Request<tonic::body::Body>> for H2Connection {
    type Response = Response<Incoming>;
    type Error = hyper::Error;
    /// Boxed because hyper's response future has no nameable type; one small allocation
    /// per call (tonic's `Channel` boxes its response future too).
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.sender.poll_ready(cx)
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.sender.send_request(request))
    }
}
