//! `/v1.0/invoke/{appId}/method/{method...}` with every verb, and any other path carrying a
//! `dapr-app-id` header: the call is relayed to the app and its answer returned as it is.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};

use crate::api::Api;
use crate::app::{AppRequest, AppResponse};
use crate::errors::DaprError;

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

async fn app_request(api: &Api, req: Request, path: String) -> Result<AppRequest, DaprError> {
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, api.max_body_size)
        .collect()
        .await
        .map_err(|_| DaprError::malformed("stream too large"))?
        .to_bytes();
    let mut headers: HeaderMap = parts.headers;
    headers.remove(APP_ID_HEADER);
    Ok(AppRequest {
        method: parts.method,
        path,
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers,
        body,
    })
}

/// The app's status, headers and body, exactly as the app sent them.
fn relay(resp: AppResponse) -> Response {
    let mut out = Response::new(axum::body::Body::from(resp.body));
    *out.status_mut() = resp.status;
    *out.headers_mut() = resp.headers;
    out
}

/// `/v1.0/invoke/...`.
pub async fn invoke(State(api): State<Arc<Api>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let Some((id, method)) = invoke_target(&path) else {
        return super::errors::no_route().await;
    };
    let (id, method) = (id.to_string(), method.to_string());
    call(&api, &id, req, method).await
}

/// Any route nothing else serves: with a `dapr-app-id` header it is an invocation of that
/// path on that app; without one, Dapr's "no app id" error.
pub async fn by_header(State(api): State<Arc<Api>>, req: Request) -> Response {
    let Some(id) = req
        .headers()
        .get(APP_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return super::errors::no_route().await;
    };
    let method = req.uri().path().trim_start_matches('/').to_string();
    call(&api, &id, req, method).await
}

async fn call(api: &Api, id: &str, req: Request, method: String) -> Response {
    let req = match app_request(api, req, method).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match api.invoke.invoke(id, req).await {
        Ok(resp) => relay(resp),
        Err(e) => e.into_response(),
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
