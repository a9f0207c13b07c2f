//! gRPC `InvokeService`: the deprecated-but-supported unary invocation of an HTTP app.

use bytes::Bytes;
use dapr::dapr::proto::common::v1::InvokeResponse;
use dapr::dapr::proto::runtime::v1 as pb;
use tonic::Status;

use super::DaprGrpc;
use crate::app::AppRequest;
use crate::blocks::invoke::method_of;

impl DaprGrpc {
    pub(super) async fn invoke_service_impl(
        &self,
        req: pb::InvokeServiceRequest,
    ) -> Result<InvokeResponse, Status> {
        let message = req.message.unwrap_or_default();
        let (verb, query) = message
            .http_extension
            .map(|h| (h.verb, h.querystring))
            .unwrap_or_default();
        let mut headers = http::HeaderMap::new();
        if !message.content_type.is_empty()
            && let Ok(v) = http::HeaderValue::from_str(&message.content_type)
        {
            headers.insert(http::header::CONTENT_TYPE, v);
        }
        let app_req = AppRequest {
            method: method_of(verb),
            path: message.method.trim_start_matches('/').to_string(),
            query,
            headers,
            body: message
                .data
                .map(|d| Bytes::from(d.value))
                .unwrap_or_default(),
        };
        let resp = self.api.invoke.invoke(&req.id, app_req).await?;
        if !resp.status.is_success() {
            // Dapr reports a failed HTTP call as an error carrying the app's status.
            return Err(Status::unknown(format!(
                "failed to invoke method {}: status {}: {}",
                message.method,
                resp.status.as_u16(),
                String::from_utf8_lossy(&resp.body)
            )));
        }
        let content_type = resp
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok(InvokeResponse {
            data: Some(prost_types::Any {
                type_url: String::new(),
                value: resp.body.into(),
            }),
            content_type,
        })
    }
}
