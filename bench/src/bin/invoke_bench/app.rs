//! The invoked application: an HTTP/1.1 server answering `POST /echo` and a gRPC server
//! answering `/bench.Echo/Echo`, both echoing the request payload. Both are hyper servers
//! on the benchmark's app runtime; the gRPC one uses tonic's server-side codec machinery
//! with a hand-written prost message instead of generated code.

use std::convert::Infallible;
use std::future::{Ready, ready};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tonic::Status;
use tonic_prost::ProstCodec;

/// The HTTP app's echo route, and the method name the sidecar forwards to it.
pub const HTTP_METHOD: &str = "echo";
/// Full gRPC path of the echo call.
pub const GRPC_PATH: &str = "/bench.Echo/Echo";

/// `message Echo { bytes data = 1; }`: both the request and the response.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Echo {
    #[prost(bytes = "bytes", tag = "1")]
    pub data: Bytes,
}

/// Request and response are the same message, so one codec type serves both sides.
pub type EchoCodec = ProstCodec<Echo, Echo>;

/// Accepts connections until the runtime shuts down, serving each with `serve`.
async fn accept_loop<F, Fut>(listener: TcpListener, what: &'static str, serve: F)
where
    F: Fn(TokioIo<tokio::net::TcpStream>) -> Fut,
    Fut: Future<Output: Send + 'static> + Send + 'static,
{
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("{what} app: accept failed: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // Connection errors are not reported: clients closing their connections at the end
        // of a phase, and the callee sidecar probing the app's port before it reports
        // healthy, end connections abruptly; a real failure shows up as a failed request on
        // the client side.
        tokio::spawn(serve(TokioIo::new(stream)));
    }
}

/// The HTTP/1.1 echo app.
pub async fn serve_http(listener: TcpListener) {
    accept_loop(listener, "HTTP", |io| {
        http1::Builder::new().serve_connection(io, service_fn(echo_http))
    })
    .await;
}

async fn echo_http(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let echo =
        req.method() == Method::POST && req.uri().path().strip_prefix('/') == Some(HTTP_METHOD);
    let body = req.into_body().collect().await?.to_bytes();
    let mut resp = if echo {
        Response::new(Full::new(body))
    } else {
        // The sidecar's start-up probes (`/dapr/config`, `/dapr/subscribe`) end here.
        let mut resp = Response::new(Full::new(Bytes::new()));
        *resp.status_mut() = StatusCode::NOT_FOUND;
        resp
    };
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(resp)
}

/// The gRPC (HTTP/2, cleartext) echo app.
pub async fn serve_grpc(listener: TcpListener) {
    accept_loop(listener, "gRPC", |io| {
        http2::Builder::new(TokioExecutor::new()).serve_connection(io, service_fn(echo_grpc))
    })
    .await;
}

async fn echo_grpc(req: Request<Incoming>) -> Result<Response<tonic::body::Body>, Infallible> {
    if req.uri().path() == GRPC_PATH {
        let mut grpc = tonic::server::Grpc::new(EchoCodec::default());
        Ok(grpc.unary(EchoService, req).await)
    } else {
        // Calls the sidecar may make to a gRPC app (`AppCallback/ListTopicSubscriptions`).
        Ok(Status::unimplemented(format!("{} is not served", req.uri().path())).into_http())
    }
}

/// The handler: the response is the request message.
struct EchoService;

impl tonic::server::UnaryService<Echo> for EchoService {
    type Response = Echo;
    type Future = Ready<Result<tonic::Response<Echo>, Status>>;

    fn call(&mut self, request: tonic::Request<Echo>) -> Self::Future {
        ready(Ok(tonic::Response::new(request.into_inner())))
    }
}
