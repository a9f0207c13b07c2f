//! The HTTP API's spans, as Dapr's tracing middleware makes them: one per request (health
//! checks aside), a child of the caller's `traceparent`, of kind client, named after the
//! path and renamed `CallLocal/<app>/<method>` for invocations, tagged with the building
//! block's attributes, failed for a status of 400 and above, and answered with the span's
//! `traceparent` unless the app already set one.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode};
use trace::baggage::BAGGAGE;
use trace::{SpanContext, SpanKind, TRACEPARENT, TRACESTATE};

use crate::Api;

/// The parent a request names: its `traceparent` with `tracestate`.
pub fn parent_of(headers: &HeaderMap) -> Option<SpanContext> {
    let tp = headers.get(TRACEPARENT)?.to_str().ok()?;
    let ts = headers.get(TRACESTATE).and_then(|v| v.to_str().ok());
    Some(SpanContext::from_traceparent(tp)?.with_trace_state(ts))
}

/// Sets `traceparent` (and `tracestate`) to `ctx`.
pub fn set_context_headers(headers: &mut HeaderMap, ctx: &SpanContext) {
    if let Ok(v) = HeaderValue::try_from(ctx.traceparent()) {
        headers.insert(TRACEPARENT, v);
    }
    if let Some(v) = ctx.tracestate().and_then(|s| HeaderValue::try_from(s).ok()) {
        headers.insert(TRACESTATE, v);
    }
}

/// What a recording span needs of the request once the handler has taken it.
struct Seen {
    method: http::Method,
    path: String,
    uri: String,
    peer: Option<std::net::SocketAddr>,
    dapr_headers: Vec<(String, String)>,
    app_id_header: Option<String>,
}

impl Seen {
    fn of(req: &Request) -> Self {
        let headers = req.headers();
        let dapr_headers = headers
            .iter()
            .filter(|(name, _)| {
                let n = name.as_str();
                // The API token is a credential: it is not copied into traces.
                n.starts_with("dapr-")
                    && n.len() > 4
                    && n != crate::http::middleware::API_TOKEN_HEADER
            })
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
            .collect();
        Self {
            method: req.method().clone(),
            path: req.uri().path().to_string(),
            uri: req.uri().path_and_query().map_or_else(
                || req.uri().path().to_string(),
                |pq| pq.as_str().to_string(),
            ),
            peer: req
                .extensions()
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0),
            dapr_headers,
            app_id_header: headers
                .get("dapr-app-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }
    }
}

/// The request's `baggage` (header lines joined), if any, once it is known to be well
/// formed; Dapr refuses a malformed one with 400 and echoes a good one in the answer.
fn baggage_of(headers: &HeaderMap) -> Result<Option<HeaderValue>, trace::baggage::BaggageError> {
    let lines = headers
        .get_all(BAGGAGE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    Ok(trace::baggage::joined(lines)?.and_then(|b| HeaderValue::try_from(b).ok()))
}

/// Health checks are not traced (Dapr skips any path containing `/healthz`).
fn untraced(path: &str) -> bool {
    path.contains("/healthz")
}

/// The middleware.
pub async fn trace(State(api): State<Arc<Api>>, req: Request, next: Next) -> Response {
    if untraced(req.uri().path()) {
        return next.run(req).await;
    }
    let baggage = match baggage_of(req.headers()) {
        Ok(b) => b,
        Err(e) => {
            let mut resp = (
                StatusCode::BAD_REQUEST,
                format!("invalid baggage header: {e}\n"),
            )
                .into_response();
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            return resp;
        }
    };
    let parent = parent_of(req.headers());
    let span = api
        .tracer
        .start_span(SpanKind::Client, parent.as_ref(), || {
            req.uri().path().to_string().into()
        });
    let seen = span.is_recording().then(|| Seen::of(&req));
    let mut resp = span.scope(next.run(req)).await;
    if let Some(seen) = seen {
        let status = resp.status();
        span.annotate(|a| annotate(a, &seen, status));
    }
    if !resp.headers().contains_key(TRACEPARENT) {
        set_context_headers(resp.headers_mut(), span.context());
    }
    if let Some(b) = baggage {
        resp.headers_mut().insert(BAGGAGE, b);
    }
    span.end();
    resp
}

/// Go's `http.StatusText`, for the error description Dapr gives a failed span.
fn status_text(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Unknown")
}

fn annotate(a: &mut trace::Annotations<'_>, seen: &Seen, status: StatusCode) {
    for (k, v) in &seen.dapr_headers {
        a.set(k.clone(), v.clone());
    }
    let statement = || format!("{} {}", seen.method, seen.path);
    match block_of(&seen.path, seen.app_id_header.as_deref()) {
        Block::Store { system, name } => {
            a.set("db.system", system);
            a.set("db.connection_string", system);
            a.set("db.statement", statement());
            a.set("db.name", name);
        }
        Block::Publish { topic } => {
            a.set("messaging.system", "pubsub");
            a.set("messaging.destination.name", topic);
        }
        Block::Invoke { app_id, method } => {
            a.set("rpc.service", "ServiceInvocation");
            a.set("net.peer.name", app_id.clone());
            a.set_name(format!("CallLocal/{app_id}/{method}"));
        }
        Block::Other => {}
    }
    a.set("dapr.protocol", "http");
    a.set("dapr.api", statement());
    a.set("dapr.status_code", status.as_u16().to_string());
    a.set("http.request.method", seen.method.as_str().to_string());
    a.set("url.full", seen.uri.clone());
    if let Some(peer) = seen.peer {
        a.set("server.address", peer.ip().to_string());
        a.set("server.port", peer.port().to_string());
    }
    if status.as_u16() >= 400 {
        a.set_error(format!(
            "Code({}): {}",
            status.as_u16(),
            status_text(status)
        ));
    }
}

/// Which building block a path belongs to, with what its span attributes need.
#[derive(Debug, PartialEq, Eq)]
enum Block {
    /// State, secrets and bindings: Dapr tags them as databases.
    Store {
        system: &'static str,
        name: String,
    },
    Publish {
        topic: String,
    },
    Invoke {
        app_id: String,
        method: String,
    },
    Other,
}

fn block_of(path: &str, app_id_header: Option<&str>) -> Block {
    let segments = |prefix: &str| path.strip_prefix(prefix).map(|rest| rest.split('/'));
    let first = |prefix: &str| {
        segments(prefix)
            .and_then(|mut s| s.next().map(|n| kit::percent::decode_lossy(n).into_owned()))
            .filter(|n| !n.is_empty())
    };
    for (prefix, system) in [
        ("/v1.0/state/", "state"),
        ("/v1.0-alpha1/state/", "state"),
        ("/v1.0/secrets/", "secrets"),
        ("/v1.0/bindings/", "bindings"),
    ] {
        if let Some(name) = first(prefix) {
            return Block::Store { system, name };
        }
    }
    if let Some(rest) = path.strip_prefix("/v1.0/publish/")
        && let Some((_, topic)) = rest.split_once('/')
    {
        return Block::Publish {
            topic: kit::percent::decode_lossy(topic).into_owned(),
        };
    }
    if let Some(rest) = path.strip_prefix("/v1.0/invoke/") {
        let (id, method) = rest
            .split_once("/method/")
            .unwrap_or((rest.trim_end_matches("/method"), ""));
        return Block::Invoke {
            app_id: kit::percent::decode_lossy(id).into_owned(),
            method: kit::percent::decode_lossy(method).into_owned(),
        };
    }
    match app_id_header {
        Some(id) if !path.starts_with("/v1.0/") && !path.starts_with("/v1.0-") => Block::Invoke {
            app_id: id.to_string(),
            method: kit::percent::decode_lossy(path.trim_start_matches('/')).into_owned(),
        },
        _ => Block::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_block() {
        assert_eq!(
            block_of("/v1.0/state/store/key", None),
            Block::Store {
                system: "state",
                name: "store".into()
            }
        );
        assert_eq!(
            block_of("/v1.0-alpha1/state/s/query", None),
            Block::Store {
                system: "state",
                name: "s".into()
            }
        );
        assert_eq!(
            block_of("/v1.0/secrets/vault/k", None),
            Block::Store {
                system: "secrets",
                name: "vault".into()
            }
        );
        assert_eq!(
            block_of("/v1.0/publish/ps/orders/new", None),
            Block::Publish {
                topic: "orders/new".into()
            }
        );
        assert_eq!(
            block_of("/v1.0/invoke/b/method/say%20hi/x", None),
            Block::Invoke {
                app_id: "b".into(),
                method: "say hi/x".into()
            }
        );
        assert_eq!(
            block_of("/orders/1", Some("b")),
            Block::Invoke {
                app_id: "b".into(),
                method: "orders/1".into()
            }
        );
        assert_eq!(block_of("/v1.0/metadata", Some("b")), Block::Other);
        assert_eq!(block_of("/v1.0/metadata", None), Block::Other);
    }

    #[test]
    fn health_checks_are_not_traced() {
        assert!(untraced("/v1.0/healthz"));
        assert!(untraced("/v1.0/healthz/outbound"));
        assert!(!untraced("/v1.0/state/s"));
    }

    #[test]
    fn context_headers_round_trip() {
        let ctx = SpanContext::from_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .expect("valid")
        .with_trace_state(Some("k=v"));
        let mut headers = HeaderMap::new();
        set_context_headers(&mut headers, &ctx);
        assert_eq!(parent_of(&headers), Some(ctx));
    }
}
