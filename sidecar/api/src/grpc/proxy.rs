//! gRPC proxying: a call for any service other than Dapr's own, made to the sidecar with
//! `dapr-app-id` metadata, is forwarded as raw HTTP/2 (so every streaming shape works) to
//! that app's gRPC server: directly when the app is ours, else through the app's sidecar,
//! whose internal port forwards it on the same way.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderValue, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::Api;
use blocks::invoke::{CALLEE_APP_ID, CALLER_APP_ID, CALLER_NAMESPACE, Route};

const APP_ID: &str = "dapr-app-id";

/// The HTTP/2 client that carries proxied calls in plain HTTP/2; under mTLS, hops to
/// other sidecars take the invoke block's peer clients instead.
#[derive(Clone)]
pub struct Proxy {
    api: Arc<Api>,
    client: Client<HttpConnector, Body>,
    /// On the internal port, calls are for our own app only (the hop is already made).
    internal: bool,
    /// [`Api::app_api_token`] as a header value.
    app_token: Option<HeaderValue>,
}

impl Proxy {
    pub fn new(api: Arc<Api>, internal: bool) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build(connector);
        let app_token = api
            .app_api_token
            .as_deref()
            .and_then(|t| HeaderValue::from_str(t).ok());
        Self {
            api,
            client,
            internal,
            app_token,
        }
    }
}

/// A gRPC status as a trailers-only response.
fn grpc_error(code: tonic::Code, message: &str) -> Response {
    let mut resp = Response::new(Body::empty());
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from(code as i32));
    if let Ok(v) = HeaderValue::from_str(&message.replace(['\r', '\n'], " ")) {
        headers.insert("grpc-message", v);
    }
    resp
}

/// Serves every gRPC call no registered service claims.
pub async fn forward(State(proxy): State<Proxy>, mut req: Request) -> Response {
    let Some(target) = req
        .headers()
        .get(APP_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return grpc_error(
            tonic::Code::Unimplemented,
            "unknown service; to proxy a call, set dapr-app-id metadata",
        );
    };
    let invoke = &proxy.api.invoke;
    if !proxy.internal
        && let Some(token) = &proxy.api.api_token
    {
        let presented = req
            .headers()
            .get("dapr-api-token")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !crate::token_matches(presented, token.as_bytes()) {
            return grpc_error(tonic::Code::Unauthenticated, "Unauthorized");
        }
    }
    // The caller's token is for this sidecar only; it never travels on.
    req.headers_mut().remove("dapr-api-token");
    let route = if proxy.internal {
        // Another sidecar forwarded the call here: it must be for our own app.
        let (callee, _) = target.split_once('.').unwrap_or((&target, ""));
        if callee != invoke.app_id() {
            return grpc_error(
                tonic::Code::NotFound,
                &format!("app {callee} is not served by this sidecar"),
            );
        }
        let peer = crate::internal::peer_identity(req.extensions());
        let operation = req.uri().path().to_string();
        let admitted =
            crate::internal::caller(&proxy.api, peer, req.headers_mut()).and_then(|who| {
                invoke
                    .authorize(&who, &operation, "")
                    .map_err(crate::internal::denied)
            });
        if let Err(status) = admitted {
            return grpc_error(status.code(), status.message());
        }
        invoke.route_local()
    } else {
        invoke.route(&target).await
    };
    if let (Ok(Route::LocalApp(_)), Some(token)) = (&route, &proxy.app_token) {
        req.headers_mut().insert("dapr-api-token", token.clone());
    }
    let (address, to_sidecar) = match route {
        Ok(Route::LocalApp(addr)) => (addr, false),
        Ok(Route::Sidecar(addr)) => (addr, true),
        Err(e) => return grpc_error(tonic::Code::Unavailable, &e.message),
    };
    let tls = if to_sidecar && invoke.mtls().is_some() {
        let Ok((app, ns)) = invoke.target(&target) else {
            return grpc_error(tonic::Code::InvalidArgument, "invalid dapr-app-id");
        };
        invoke.peers().proxy_client(app, ns)
    } else {
        None
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    if !proxy.internal {
        let headers = req.headers_mut();
        for (name, value) in [
            (CALLER_APP_ID, invoke.app_id()),
            (CALLER_NAMESPACE, invoke.namespace()),
        ] {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(target.split('.').next().unwrap_or(&target)) {
            headers.insert(CALLEE_APP_ID, v);
        }
    }
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let uri: Result<Uri, _> = format!("{scheme}://{address}{path}").parse();
    match uri {
        Ok(uri) => *req.uri_mut() = uri,
        Err(e) => return grpc_error(tonic::Code::Internal, &e.to_string()),
    }
    req.headers_mut().remove(http::header::HOST);
    // The next hop continues this sidecar's span, as Dapr's proxy passes it on.
    if let Some(ctx) = trace::current_context() {
        super::spans::set_context_metadata(req.headers_mut(), &ctx);
    }
    // The plain hop sends the server's body as it came; only the peer pool, which takes
    // the channel's body type, needs it wrapped.
    let sent = match &tls {
        Some(client) => client.request(req.map(channel::Body::new)).await,
        None => proxy.client.request(req).await,
    };
    match sent {
        Ok(resp) => resp.map(Body::new),
        Err(e) => grpc_error(
            tonic::Code::Unavailable,
            &format!("proxying to {target}: {e}"),
        ),
    }
}
