//! The connections to other sidecars: clients of their internal gRPC API
//! (`dapr.proto.internals.v1.ServiceInvocation`), and under mTLS the raw HTTP/2 clients
//! that carry proxied gRPC calls. One client per peer, created on first use and shared by
//! every later call; under mTLS each is bound to the identity it verifies.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use proto::internals::v1::service_invocation_client::ServiceInvocationClient;
use proto::internals::v1::{
    InternalInvokeRequest, InternalInvokeRequestStream, InternalInvokeResponse,
    InternalInvokeResponseStream,
};
use thiserror::Error;
use tonic::transport::{Channel, Endpoint};

use crate::mtls::Mtls;

/// Bound on the clients kept: callers choose the targets, so the set must not grow
/// without end.
const MAX_CACHED_CLIENTS: usize = 1024;
/// Bound on the proxy clients kept, one per target app.
const MAX_PROXY_CLIENTS: usize = 256;

/// An HTTP/2 client over TLS for proxied gRPC calls to one peer sidecar.
pub type ProxyClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, crate::Body>;

/// Why no client to a peer could be made.
#[derive(Debug, Error)]
pub enum PeerError {
    /// The resolved address does not make an endpoint.
    #[error(transparent)]
    Address(#[from] tonic::transport::Error),
    /// The mTLS channel could not be set up; the reason as the security crate words it.
    #[error("{0}")]
    Mtls(String),
}

/// A call a peer refused or that never reached it. Only what invocation needs to decide
/// is exposed: the message, whether access control refused it, whether it was delivered.
#[derive(Debug, Error)]
#[error("{}", .0.message())]
pub struct CallError(tonic::Status);

impl CallError {
    pub fn message(&self) -> &str {
        self.0.message()
    }

    /// The peer's access control refused this caller.
    pub fn is_denied(&self) -> bool {
        self.0.code() == tonic::Code::PermissionDenied
    }

    /// The peer was never reached, so the call was not delivered and may be sent again.
    pub fn is_unreachable(&self) -> bool {
        self.0.code() == tonic::Code::Unavailable
    }
}

/// The clients to other sidecars.
pub struct Peers {
    clients: Mutex<HashMap<String, ServiceInvocationClient<Channel>>>,
    /// Under mTLS, by target (app id, namespace).
    proxy_clients: Mutex<HashMap<(String, String), ProxyClient>>,
    max_message: usize,
    mtls: Option<Arc<Mtls>>,
}

impl Peers {
    /// Clients that send and accept messages up to `max_message` bytes, over mTLS with
    /// this identity when there is one.
    pub fn new(max_message: usize, mtls: Option<Arc<Mtls>>) -> Self {
        Self {
            clients: Mutex::default(),
            proxy_clients: Mutex::default(),
            max_message,
            mtls,
        }
    }

    pub fn mtls(&self) -> Option<&Arc<Mtls>> {
        self.mtls.as_ref()
    }

    /// The sidecar of `app_id` in `namespace`, found at `address`. Connections are made
    /// lazily, on the first call.
    pub fn peer(&self, address: &str, app_id: &str, namespace: &str) -> Result<Peer, PeerError> {
        // Under mTLS a connection is bound to the identity it verified.
        let key = if self.mtls.is_some() {
            format!("{app_id}.{namespace}@{address}")
        } else {
            address.to_string()
        };
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(Peer(c.clone()));
        }
        if clients.len() >= MAX_CACHED_CLIENTS {
            clients.clear();
        }
        let channel = match &self.mtls {
            Some(mtls) => security::channel_with_tls(address, mtls.client_for(app_id, namespace))
                .map_err(|e| PeerError::Mtls(e.to_string()))?,
            None => Endpoint::from_shared(format!("http://{address}"))?
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(5))
                // A peer that vanishes without closing its connection is noticed in seconds.
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(5))
                .keep_alive_while_idle(true)
                .connect_lazy(),
        };
        let client = ServiceInvocationClient::new(channel)
            .max_decoding_message_size(self.max_message)
            .max_encoding_message_size(self.max_message);
        clients.insert(key, client.clone());
        Ok(Peer(client))
    }

    /// Under mTLS, the client that carries proxied gRPC calls to the sidecar of `app_id`
    /// in `namespace`, with this sidecar's certificate, accepting only that app's identity.
    /// `None` without mTLS: proxied calls then go in plain HTTP/2.
    pub fn proxy_client(&self, app_id: &str, namespace: &str) -> Option<ProxyClient> {
        let mtls = self.mtls.as_ref()?;
        let mut clients = self.proxy_clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() >= MAX_PROXY_CLIENTS {
            clients.clear();
        }
        let client = clients
            .entry((app_id.to_string(), namespace.to_string()))
            .or_insert_with(|| tls_client(&mtls.client_for(app_id, namespace)))
            .clone();
        Some(client)
    }
}

/// An HTTP/2 client over TLS that accepts only the servers `config` accepts.
fn tls_client(config: &rustls::ClientConfig) -> ProxyClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.enforce_http(false);
    // hyper-rustls sets ALPN itself.
    let mut config = config.clone();
    config.alpn_protocols.clear();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http2()
        .wrap_connector(connector);
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(https)
}

/// One peer sidecar's internal API; cheap to clone, every clone shares the connection.
#[derive(Clone)]
pub struct Peer(ServiceInvocationClient<Channel>);

impl Peer {
    /// `CallLocal`: a whole request, a whole response.
    pub async fn call_local(
        &mut self,
        req: InternalInvokeRequest,
    ) -> Result<InternalInvokeResponse, CallError> {
        let mut req = tonic::Request::new(req);
        crate::trace_context::to_peer(req.metadata_mut());
        self.0
            .call_local(req)
            .await
            .map(tonic::Response::into_inner)
            .map_err(CallError)
    }

    /// `CallLocalStream`: the request head then its body in chunks; the response likewise.
    /// The method also goes as `__dapr_calllocalstream_method` metadata, which Dapr's
    /// sidecars read to name the call's span before the first message arrives.
    pub async fn call_local_stream(
        &mut self,
        method: &str,
        outbound: impl Stream<Item = InternalInvokeRequestStream> + Send + 'static,
    ) -> Result<ResponseStream, CallError> {
        let mut req = tonic::Request::new(outbound);
        crate::trace_context::to_peer(req.metadata_mut());
        if let Ok(v) = method.parse() {
            req.metadata_mut()
                .insert("__dapr_calllocalstream_method", v);
        }
        self.0
            .call_local_stream(req)
            .await
            .map(|r| ResponseStream(r.into_inner()))
            .map_err(CallError)
    }
}

/// The messages of a peer's streamed response.
pub struct ResponseStream(tonic::Streaming<InternalInvokeResponseStream>);

impl ResponseStream {
    /// The next message; `None` once the peer has finished.
    pub async fn message(&mut self) -> Result<Option<InternalInvokeResponseStream>, CallError> {
        self.0.message().await.map_err(CallError)
    }
}

impl Stream for ResponseStream {
    type Item = Result<InternalInvokeResponseStream, CallError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0)
            .poll_next(cx)
            .map(|item| item.map(|r| r.map_err(CallError)))
    }
}
