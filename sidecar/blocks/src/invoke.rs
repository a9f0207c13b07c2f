//! Service invocation: a call for app `X` goes to this sidecar's own app when `X` is us,
//! and otherwise to `X`'s sidecar, found by name resolution and called over the internal
//! gRPC API (`dapr.proto.internals.v1.ServiceInvocation/CallLocal`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dapr::dapr::proto::common::v1::{HttpExtension, InvokeRequest, InvokeResponse};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use proto::internals::v1::{
    ApiVersion, InternalInvokeRequest, InternalInvokeResponse, ListStringValue,
};

use crate::access::{AccessControl, AccessDenied, Caller};
use crate::errors::{Code, DaprError};
use channel::{
    AppChannel, AppError, AppRequest, AppResponse, CallError, Peer, Peers, method_of, verb_of,
};
use components_core::nameresolution::{ResolveError, Resolver};
use resiliency::{Outcome, Policies};

/// The HTTP status for an internal response's `status.code`. Dapr's Go sidecar puts the
/// gRPC code there (0-16) when the app speaks gRPC, and the HTTP status when it speaks HTTP.
fn status_of_code(code: i32) -> StatusCode {
    if (0..=16).contains(&code) {
        return channel::http_status_of_code(code);
    }
    u16::try_from(code)
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Bound on the clients kept per URL target.
const MAX_CACHED_CLIENTS: usize = 1024;

/// Headers the callee's app sees, as Dapr sets them.
pub const CALLER_APP_ID: &str = "dapr-caller-app-id";
pub const CALLER_NAMESPACE: &str = "dapr-caller-namespace";
pub const CALLEE_APP_ID: &str = "dapr-callee-app-id";

/// Where a proxied gRPC call is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `host:port` of our own app's gRPC server.
    LocalApp(String),
    /// `host:port` of the target's sidecar's internal gRPC server.
    Sidecar(String),
}

pub struct InvokeBlock {
    pub(super) app_id: String,
    pub(super) namespace: String,
    pub(super) app: Option<Arc<AppChannel>>,
    resolver: Option<Arc<dyn Resolver>>,
    /// The other sidecars, each reached over one connection that every call shares.
    peers: Peers,
    pub(super) max_message: usize,
    pub(super) policies: Policies,
    /// `HTTPEndpoint` resources by name, and channels to URL app ids as they are used.
    pub(super) endpoints: HashMap<String, Arc<Endpoint>>,
    pub(super) url_endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    access: Option<AccessControl>,
}

/// A non-Dapr HTTP service: where it is and the headers every call to it carries.
pub struct Endpoint {
    pub channel: channel::HttpChannel,
    pub headers: HeaderMap,
}

pub(super) fn direct_invoke_error(status: StatusCode, message: String) -> DaprError {
    DaprError::new("ERR_DIRECT_INVOKE", message, status, Code::Internal)
}

/// Every failure to reach our own app is Dapr's 500 `ERR_DIRECT_INVOKE`.
pub(super) fn app_error(target: &str, e: AppError) -> DaprError {
    direct_invoke_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("failed to invoke, id: {target}, err: {e}"),
    )
}

impl InvokeBlock {
    pub fn new(
        app_id: String,
        namespace: String,
        app: Option<Arc<AppChannel>>,
        resolver: Option<Arc<dyn Resolver>>,
        max_message: usize,
        policies: Policies,
    ) -> Self {
        Self {
            app_id,
            namespace,
            app,
            resolver,
            peers: Peers::new(max_message, None),
            max_message,
            policies,
            endpoints: HashMap::new(),
            url_endpoints: Mutex::default(),
            access: None,
        }
    }

    /// Calls to other sidecars go over mTLS with this identity.
    pub fn with_mtls(mut self, mtls: Option<Arc<channel::mtls::Mtls>>) -> Self {
        self.peers = Peers::new(self.max_message, mtls);
        self
    }

    /// Incoming calls are checked against the Configuration's `accessControl`.
    pub fn with_access_control(mut self, access: Option<AccessControl>) -> Self {
        self.access = access;
        self
    }

    pub fn mtls(&self) -> Option<&Arc<channel::mtls::Mtls>> {
        self.peers.mtls()
    }

    /// The connections to other sidecars, which proxied calls use too.
    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    /// Applies access control to an incoming call; the front door answers a refusal
    /// with `PermissionDenied`.
    pub fn authorize(
        &self,
        caller: &Caller,
        operation: &str,
        verb: &str,
    ) -> Result<(), AccessDenied> {
        match &self.access {
            Some(acl) if !acl.allows(caller, operation, verb) => Err(AccessDenied {
                caller: caller.clone(),
                operation: operation.to_string(),
                verb: verb.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Splits `app` or `app.namespace` into its parts; the namespace defaults to ours.
    /// Splits `app` or `app.namespace`; the namespace defaults to ours. Both parts must be
    /// plain names (letters, digits, `-`, `_`): they end up in DNS names and addresses, so
    /// anything else could steer a call to a host of the caller's choosing.
    pub fn target<'a>(&'a self, id: &'a str) -> Result<(&'a str, &'a str), DaprError> {
        let (app, ns) = match id.split_once('.') {
            Some((app, ns)) => (app, ns),
            None => (id, self.namespace.as_str()),
        };
        let plain = |s: &str| {
            s.len() <= 253
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if app.is_empty() || !plain(app) || !plain(ns) {
            return Err(direct_invoke_error(
                StatusCode::BAD_REQUEST,
                format!("invalid app id {id:?}"),
            ));
        }
        Ok((app, ns))
    }

    /// Invokes `req` on the app `target` (`app` or `app.namespace`), under the resiliency
    /// policy for that app (Dapr's built-in retries when none is configured).
    pub async fn invoke(
        &self,
        target: &str,
        mut req: AppRequest,
    ) -> Result<AppResponse, DaprError> {
        let (app_id, namespace) = self.target(target)?;
        if app_id.is_empty() {
            return Err(direct_invoke_error(
                StatusCode::NOT_FOUND,
                "failed getting app id either from the URL path or the header dapr-app-id".into(),
            ));
        }
        set_header(&mut req.headers, CALLER_APP_ID, &self.app_id);
        set_header(&mut req.headers, CALLER_NAMESPACE, &self.namespace);
        set_header(&mut req.headers, CALLEE_APP_ID, app_id);
        let local = app_id == self.app_id && namespace == self.namespace;
        let policy = self.policies.app(app_id);
        let attempt = || {
            let req = req.clone();
            async move {
                if local {
                    self.call_local(req).await.map_err(|e| app_error(target, e))
                } else {
                    self.call_remote(target, app_id, namespace, req).await
                }
            }
        };
        policy.run(attempt, classify).await.map_err(|e| {
            direct_invoke_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to invoke, id: {target}, err: {e}"),
            )
        })?
    }

    /// The sidecar that fronts `app_id`.
    pub(super) async fn peer_for(
        &self,
        target: &str,
        app_id: &str,
        namespace: &str,
    ) -> Result<Peer, DaprError> {
        let address = self.resolve(target, app_id, namespace).await?;
        self.peers.peer(&address, app_id, namespace).map_err(|e| {
            direct_invoke_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to invoke, id: {target}, err: {e}"),
            )
        })
    }

    /// The internal address of `app_id`'s sidecar.
    pub(super) async fn resolve(
        &self,
        target: &str,
        app_id: &str,
        namespace: &str,
    ) -> Result<String, DaprError> {
        let resolver = self.resolver.as_ref().ok_or_else(|| {
            direct_invoke_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "no name resolution is configured".into(),
            )
        })?;
        resolver
            .resolve(app_id, namespace)
            .await
            .map_err(|e| match e {
                ResolveError::NotFound(_) => direct_invoke_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("failed to invoke, id: {target}, err: couldn't find service: {app_id}"),
                ),
                other => direct_invoke_error(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
            })
    }

    async fn call_remote(
        &self,
        target: &str,
        app_id: &str,
        namespace: &str,
        req: AppRequest,
    ) -> Result<AppResponse, DaprError> {
        let mut peer = self.peer_for(target, app_id, namespace).await?;
        let resp = peer
            .call_local(to_internal(req))
            .await
            .map_err(|e| peer_error(target, &e))?;
        from_internal(resp)
    }

    /// Adds the `HTTPEndpoint`s this app may call by name.
    pub fn with_endpoints(mut self, endpoints: HashMap<String, Arc<Endpoint>>) -> Self {
        self.endpoints = endpoints;
        self
    }

    /// The non-Dapr endpoint `target` names: an `HTTPEndpoint`, or an `http(s)://` URL.
    pub(super) fn external(&self, target: &str) -> Option<Arc<Endpoint>> {
        if let Some(e) = self.endpoints.get(target) {
            return Some(e.clone());
        }
        if !(target.starts_with("http://") || target.starts_with("https://")) {
            return None;
        }
        let mut urls = self.url_endpoints.lock().unwrap_or_else(|e| e.into_inner());
        // Callers choose these URLs: keep a bounded set of clients, not one per URL ever seen.
        if urls.len() >= MAX_CACHED_CLIENTS && !urls.contains_key(target) {
            urls.clear();
        }
        if let Some(e) = urls.get(target) {
            return Some(e.clone());
        }
        let channel = channel::HttpChannel::external(
            target,
            &channel::EndpointTls::default(),
            self.max_message,
        )
        .ok()?;
        let endpoint = Arc::new(Endpoint {
            channel,
            headers: HeaderMap::new(),
        });
        urls.insert(target.to_string(), endpoint.clone());
        Some(endpoint.clone())
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Where a raw (proxied) call for `target` goes: our app's gRPC server, or the internal
    /// port of the sidecar that fronts `target`.
    pub async fn route(&self, target: &str) -> Result<Route, DaprError> {
        let (app_id, namespace) = self.target(target)?;
        if app_id == self.app_id && namespace == self.namespace {
            return self.route_local();
        }
        let resolver = self.resolver.as_ref().ok_or_else(|| {
            direct_invoke_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "no name resolution is configured".into(),
            )
        })?;
        let address = resolver.resolve(app_id, namespace).await.map_err(|e| {
            direct_invoke_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to proxy to {target}: {e}"),
            )
        })?;
        Ok(Route::Sidecar(address))
    }

    /// Our own app's gRPC address, for proxied calls.
    pub fn route_local(&self) -> Result<Route, DaprError> {
        self.app
            .as_ref()
            .and_then(|a| a.grpc_address())
            .map(Route::LocalApp)
            .ok_or_else(|| direct_invoke_error(StatusCode::INTERNAL_SERVER_ERROR, "no gRPC app to proxy to: start the sidecar with --app-protocol grpc and --app-port".into()))
    }

    /// Calls this sidecar's own app.
    pub async fn call_local(&self, req: AppRequest) -> Result<AppResponse, AppError> {
        let app = self.app.as_ref().ok_or(AppError::NoChannel)?;
        app.invoke(req).await
    }
}

/// A failed call to the other sidecar; one that never reached it is marked so, which the
/// retry policy needs to know.
pub(super) fn peer_error(target: &str, failed: &CallError) -> DaprError {
    let http = if failed.is_denied() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let mut e = direct_invoke_error(
        http,
        format!("failed to invoke, id: {target}, err: {}", failed.message()),
    );
    e.unreachable = failed.is_unreachable();
    e
}

/// How an invocation attempt counts for resiliency: a 5xx answer or an unreachable target
/// is a failure; a 4xx is the app's answer to a bad request, not a failure.
fn classify(r: &Result<AppResponse, DaprError>) -> Outcome {
    match r {
        Ok(resp) if resp.status.is_server_error() => Outcome::Http(resp.status.as_u16()),
        Ok(_) => Outcome::Success,
        Err(e) if e.unreachable => Outcome::Transport,
        Err(e) => Outcome::Http(e.http.as_u16()),
    }
}

pub(super) fn set_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

pub(super) fn header_map_to_proto(headers: &HeaderMap) -> HashMap<String, ListStringValue> {
    let mut out: HashMap<String, ListStringValue> = HashMap::with_capacity(headers.keys_len());
    for (name, value) in headers {
        if let Ok(v) = value.to_str() {
            out.entry(name.as_str().to_string())
                .or_default()
                .values
                .push(v.to_string());
        }
    }
    out
}

fn proto_to_header_map(map: HashMap<String, ListStringValue>) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(map.len());
    for (name, list) in map {
        let Ok(name) = HeaderName::try_from(name) else {
            continue;
        };
        for v in list.values {
            if let Ok(v) = HeaderValue::try_from(v) {
                out.append(name.clone(), v);
            }
        }
    }
    out
}

/// A streamed call's head as the internal API carries it (the body follows in chunks).
pub(super) fn to_internal_head(head: channel::AppRequestHead) -> InternalInvokeRequest {
    to_internal(AppRequest {
        method: head.method,
        path: head.path,
        query: head.query,
        headers: head.headers,
        body: Bytes::new(),
        data_type: head.data_type,
    })
}

/// The head of a streamed call on the callee's side.
pub fn from_internal_request_head(req: InternalInvokeRequest) -> channel::AppRequestHead {
    let r = from_internal_request(req);
    channel::AppRequestHead {
        method: r.method,
        path: r.path,
        query: r.query,
        headers: r.headers,
        data_type: r.data_type,
    }
}

/// Status and headers of a streamed response head.
pub(super) fn from_internal_head(resp: InternalInvokeResponse) -> (StatusCode, HeaderMap) {
    let code = resp.status.map_or(200, |s| s.code);
    let status = status_of_code(code);
    (status, relayed_headers(resp.headers))
}

/// A peer's response headers as this sidecar relays them: another hop's framing
/// (`Content-Length`, `Transfer-Encoding`, ...) never describes the body sent from here,
/// which is framed by its real length.
fn relayed_headers(headers: HashMap<String, ListStringValue>) -> HeaderMap {
    let mut headers = proto_to_header_map(headers);
    channel::hop::strip(&mut headers);
    headers.remove(http::header::CONTENT_LENGTH);
    headers
}

/// An app call as the internal API carries it.
pub fn to_internal(req: AppRequest) -> InternalInvokeRequest {
    InternalInvokeRequest {
        ver: ApiVersion::V1 as i32,
        metadata: header_map_to_proto(&req.headers),
        message: Some(InvokeRequest {
            content_type: channel::content_type(&req.headers),
            method: req.path,
            data: Some(prost_types::Any {
                type_url: req.data_type,
                value: req.body.into(),
            }),
            http_extension: Some(HttpExtension {
                verb: verb_of(&req.method) as i32,
                querystring: req.query,
            }),
        }),
        actor: None,
    }
}

/// The app call an internal request describes (on the callee's side).
pub fn from_internal_request(req: InternalInvokeRequest) -> AppRequest {
    let message = req.message.unwrap_or_default();
    let (verb, query) = message
        .http_extension
        .map(|h| (h.verb, h.querystring))
        .unwrap_or_default();
    let mut headers = proto_to_header_map(req.metadata);
    channel::set_content_type(&mut headers, &message.content_type);
    let (data_type, body) = message
        .data
        .map(|d| (d.type_url, Bytes::from(d.value)))
        .unwrap_or_default();
    AppRequest {
        method: method_of(verb),
        path: message.method.trim_start_matches('/').to_string(),
        query,
        headers,
        body,
        data_type,
    }
}

/// The app's answer as the internal API carries it back.
pub fn to_internal_response(resp: AppResponse) -> InternalInvokeResponse {
    InternalInvokeResponse {
        status: Some(proto::internals::v1::Status {
            code: i32::from(resp.status.as_u16()),
            message: resp
                .status
                .canonical_reason()
                .unwrap_or_default()
                .to_string(),
            details: Vec::new(),
        }),
        message: Some(InvokeResponse {
            content_type: channel::content_type(&resp.headers),
            data: Some(prost_types::Any {
                type_url: resp.data_type,
                value: resp.body.into(),
            }),
        }),
        headers: header_map_to_proto(&resp.headers),
        trailers: HashMap::new(),
    }
}

fn from_internal(resp: InternalInvokeResponse) -> Result<AppResponse, DaprError> {
    let code = resp.status.map_or(200, |s| s.code);
    let status = status_of_code(code);
    let message = resp.message.unwrap_or_default();
    let mut headers = relayed_headers(resp.headers);
    channel::set_content_type(&mut headers, &message.content_type);
    let (data_type, body) = message
        .data
        .map(|d| (d.type_url, Bytes::from(d.value)))
        .unwrap_or_default();
    Ok(AppResponse {
        status,
        headers,
        body,
        data_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn requests_survive_the_internal_encoding() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.append("x-multi", HeaderValue::from_static("a"));
        headers.append("x-multi", HeaderValue::from_static("b"));
        let req = AppRequest {
            method: Method::PATCH,
            path: "orders/42".into(),
            query: "a=1&b=2".into(),
            headers,
            body: Bytes::from_static(b"{\"x\":1}"),
            data_type: "type.googleapis.com/orders.Order".into(),
        };
        let back = from_internal_request(to_internal(req));
        assert_eq!(back.method, Method::PATCH);
        assert_eq!(back.path, "orders/42");
        assert_eq!(back.query, "a=1&b=2");
        assert_eq!(back.body.as_ref(), b"{\"x\":1}");
        assert_eq!(back.headers.get_all("x-multi").iter().count(), 2);
        assert_eq!(back.headers["content-type"], "application/json");
        assert_eq!(back.data_type, "type.googleapis.com/orders.Order");
    }

    #[test]
    fn responses_keep_status_headers_and_body() {
        let mut headers = HeaderMap::new();
        headers.insert("x-app", HeaderValue::from_static("yes"));
        let resp = AppResponse {
            status: StatusCode::IM_A_TEAPOT,
            headers,
            body: Bytes::from_static(b"tea"),
            data_type: "type.googleapis.com/tea.Cup".into(),
        };
        let back = from_internal(to_internal_response(resp)).expect("decodes");
        assert_eq!(back.status, StatusCode::IM_A_TEAPOT);
        assert_eq!(back.headers["x-app"], "yes");
        assert_eq!(back.body.as_ref(), b"tea");
        assert_eq!(back.data_type, "type.googleapis.com/tea.Cup");
    }
}
