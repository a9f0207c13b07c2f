//! The `/mutate` endpoint, as Dapr's injector serves it: a JSON AdmissionReview in, one
//! out. A request without a body is 400 `empty body`, one that is not
//! `application/json` is 415, one that is not an AdmissionReview is 400 with the reason.
//! (TLS and the listener belong to the binary.)

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::container::InjectorSettings;
use crate::review::{Requesters, review_with, wants_components};

/// What every review is answered with.
pub struct Injector {
    /// Swapped when the control plane's Configuration changes (see `system_config`).
    pub settings: Arc<ArcSwap<InjectorSettings>>,
    pub requesters: Requesters,
    /// The cluster, for the Components a Pod's injected pluggable components come from.
    pub client: Option<kube::Client>,
}

/// The Components of `namespace`, as JSON; none when they cannot be read.
async fn components(client: &kube::Client, namespace: &str) -> Vec<serde_json::Value> {
    let resource = kube::api::ApiResource {
        group: "dapr.io".into(),
        version: "v1alpha1".into(),
        api_version: "dapr.io/v1alpha1".into(),
        kind: "Component".into(),
        plural: "components".into(),
    };
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(client.clone(), namespace, &resource);
    match api.list(&Default::default()).await {
        Ok(list) => list
            .items
            .iter()
            .filter_map(|c| serde_json::to_value(c).ok())
            .collect(),
        Err(e) => {
            tracing::warn!("listing the Components of {namespace} for pluggable components: {e}");
            Vec::new()
        }
    }
}

/// The webhook's routes.
pub fn router(injector: Arc<Injector>) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .with_state(injector)
}

fn plain(status: StatusCode, text: String) -> Response {
    let mut resp = (status, format!("{text}\n")).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

async fn mutate(
    State(injector): State<Arc<Injector>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if body.is_empty() {
        return plain(StatusCode::BAD_REQUEST, "empty body".into());
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "application/json");
    if !json {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid Content-Type, expected `application/json`".into(),
        );
    }
    let found = match (&injector.client, wants_components(&body)) {
        (Some(client), Some(namespace)) => components(client, &namespace).await,
        _ => Vec::new(),
    };
    match review_with(
        &body,
        &injector.settings.load(),
        &injector.requesters,
        &found,
    ) {
        Ok(answer) => {
            let mut resp = axum::Json(answer).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(e) => plain(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        router(Arc::new(Injector {
            settings: Arc::new(ArcSwap::from_pointee(InjectorSettings::default())),
            requesters: Requesters::new("", "").expect("patterns"),
            client: None,
        }))
    }

    async fn call(content_type: Option<&str>, body: &'static str) -> (StatusCode, String) {
        let mut req = Request::post("/mutate");
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = app()
            .oneshot(req.body(Body::from(body)).expect("request"))
            .await
            .expect("answer");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn bad_requests_get_daprs_answers() {
        assert_eq!(
            call(Some("application/json"), "").await,
            (StatusCode::BAD_REQUEST, "empty body\n".into())
        );
        let (status, _) = call(Some("text/plain"), "{}").await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let (status, text) = call(Some("application/json"), "{nope").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text.starts_with("can't decode body:"), "{text}");
    }

    #[tokio::test]
    async fn a_review_is_answered_in_json() {
        let (status, text) = call(
            Some("application/json"),
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","kind":{"kind":"Pod"},"object":{"metadata":{"name":"p"}}}}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["response"]["uid"], "x");
        assert_eq!(v["response"]["allowed"], true);
    }
}
