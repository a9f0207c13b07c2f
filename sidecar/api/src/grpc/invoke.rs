//! gRPC `InvokeService`: the deprecated-but-supported unary invocation of an HTTP app.

use bytes::Bytes;
use dapr::dapr::proto::common::v1::InvokeResponse;
use dapr::dapr::proto::runtime::v1 as pb;
use tonic::Status;

use super::DaprGrpc;
use channel::AppRequest;
use channel::method_of;

use super::status::OrStatus;

/// gRPC metadata that describes the call itself rather than the request; not forwarded.
fn transport_header(name: &str) -> bool {
    name.starts_with("grpc-")
        || matches!(
            name,
            "te" | "content-type" | "user-agent" | "content-length" | "dapr-api-token" | "host"
        )
}

impl DaprGrpc {
    pub(super) async fn invoke_service_impl(
        &self,
        request: tonic::Request<pb::InvokeServiceRequest>,
    ) -> Result<tonic::Response<InvokeResponse>, Status> {
        let mut headers = http::HeaderMap::new();
        for (name, value) in request.metadata().clone().into_headers() {
            if let Some(name) = name.filter(|n| !transport_header(n.as_str())) {
                headers.append(name, value);
            }
        }
        let req = request.into_inner();
        let message = req.message.unwrap_or_default();
        super::spans::annotate_invoke(&req.id, &message.method, true);
        let (verb, query) = message
            .http_extension
            .map(|h| (h.verb, h.querystring))
            .unwrap_or_default();
        channel::set_content_type(&mut headers, &message.content_type);
        let app_req = AppRequest {
            method: method_of(verb),
            path: message.method.trim_start_matches('/').to_string(),
            query,
            headers,
            body: Bytes::new(),
            data_type: String::new(),
        };
        let app_req = match message.data {
            Some(d) => AppRequest {
                body: Bytes::from(d.value),
                data_type: d.type_url,
                ..app_req
            },
            None => app_req,
        };
        let resp = self.api.invoke.invoke(&req.id, app_req).await.or_status()?;
        // The app's headers come back as response metadata, with its status, as in Dapr.
        let mut metadata = tonic::metadata::MetadataMap::new();
        for (name, value) in &resp.headers {
            if let (Ok(key), Ok(v)) = (
                tonic::metadata::MetadataKey::from_bytes(name.as_str().as_bytes()),
                tonic::metadata::MetadataValue::try_from(value.as_bytes()),
            ) && !transport_header(name.as_str())
            {
                metadata.append(key, v);
            }
        }
        if let Ok(v) = resp.status.as_u16().to_string().parse() {
            metadata.insert("dapr-http-status", v);
        }
        if let Some(mut err) = super::http_error_status(resp.status, &resp.body) {
            *err.metadata_mut() = metadata;
            return Err(err);
        }
        let content_type = channel::content_type(&resp.headers);
        let mut out = tonic::Response::new(InvokeResponse {
            data: Some(prost_types::Any {
                type_url: resp.data_type,
                value: resp.body.into(),
            }),
            content_type,
        });
        *out.metadata_mut() = metadata;
        Ok(out)
    }
}
