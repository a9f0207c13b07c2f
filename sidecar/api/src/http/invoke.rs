//! `/v1.0/invoke/{appId}/method/{method...}` with every verb, and any other path carrying a
//! `dapr-app-id` header: the call is relayed to the app and its answer returned as it is.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use http_body_util::{BodyExt, Limited};

use crate::Api;
use blocks::errors::DaprError;
use blocks::invoke_stream::RequestBody;
use channel::AppRequestHead;

use super::errors::error_response;

const APP_ID_HEADER: &str = "dapr-app-id";

/// Splits `/v1.0/invoke/{id}/method/{rest}` on the raw (still escaped) path, so the method
/// path reaches the app exactly as the caller wrote it.
fn invoke_target(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v1.0/invoke/")?;
    let (id, method) = rest
        .split_once("/method/")
        .or_else(|| rest.strip_suffix("/method").map(|id| (id, "")))?;
    Some((id, method))
}

/// `/v1.0/invoke/...`.
pub async fn invoke(State(api): State<Arc<Api>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let Some((id, method)) = invoke_target(&path) else {
        return super::errors::no_route().await;
    };
    // App ids may be URL-encoded URLs of non-Dapr endpoints.
    let id = match super::params::query_unescape("appId", id) {
        Ok(id) if id.is_empty() => return super::errors::no_route().await,
        Ok(id) => id,
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    let method = method.to_string();
    call(&api, &id, req, method).await
}

/// The app id a request names outside the `/v1.0/invoke` path: the `dapr-app-id` header,
/// or basic auth with user `dapr-app-id` (`http://dapr-app-id:<id>@localhost:3500/...`).
fn app_id_of(headers: &http::HeaderMap) -> Option<String> {
    if let Some(id) = headers.get(APP_ID_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(id.to_string());
    }
    use base64::Engine;
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = auth
        .strip_prefix("Basic ")
        .or_else(|| auth.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, id) = text.split_once(':')?;
    (user == APP_ID_HEADER && !id.is_empty()).then(|| id.to_string())
}

/// Any route nothing else serves: with an app id in a header or basic auth it is an
/// invocation of that path on that app; without one, Dapr's "no app id" error.
pub async fn by_header(State(api): State<Arc<Api>>, mut req: Request) -> Response {
    let Some(id) = app_id_of(req.headers()) else {
        return super::errors::no_route().await;
    };
    if req.headers().get(APP_ID_HEADER).is_none() {
        // The credentials only named the app; they are not the app's to see.
        req.headers_mut().remove(http::header::AUTHORIZATION);
    }
    let method = req.uri().path().trim_start_matches('/').to_string();
    call(&api, &id, req, method).await
}

/// Bodies of a known size up to this are read whole, so resiliency can retry the call;
/// larger or unsized ones stream through in chunks and are never held whole.
const BUFFER_UP_TO: u64 = 1 << 20;

async fn call(api: &Api, id: &str, req: Request, method: String) -> Response {
    use http_body::Body as _;
    let small = req
        .body()
        .size_hint()
        .exact()
        .is_some_and(|n| n <= BUFFER_UP_TO);
    let (parts, body) = req.into_parts();
    let body = if small {
        match Limited::new(body, api.max_body_size).collect().await {
            Ok(b) => RequestBody::Whole(b.to_bytes()),
            Err(_) => return error_response(&DaprError::malformed("stream too large")),
        }
    } else {
        RequestBody::Stream(channel::Body::new(body))
    };
    let mut headers = parts.headers;
    headers.remove(APP_ID_HEADER);
    let head = AppRequestHead {
        method: parts.method,
        path: method,
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers,
        data_type: String::new(),
    };
    match api.invoke.invoke_streaming(id, head, body).await {
        Ok(resp) => resp.map(axum::body::Body::new),
        Err(e) => error_response(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::invoke_target;

    #[test]
    fn splits_the_invoke_path() {
        assert_eq!(
            invoke_target("/v1.0/invoke/app/method/a/b%20c"),
            Some(("app", "a/b%20c"))
        );
        assert_eq!(
            invoke_target("/v1.0/invoke/app.ns/method/x"),
            Some(("app.ns", "x"))
        );
        assert_eq!(invoke_target("/v1.0/invoke/app/method"), Some(("app", "")));
        assert_eq!(invoke_target("/v1.0/invoke/app"), None);
        assert_eq!(invoke_target("/v1.0/state/x"), None);
    }
}
