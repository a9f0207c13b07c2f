//! Calling a gRPC app (`--app-protocol grpc`) through `dapr.proto.runtime.v1.AppCallback`.

use bytes::Bytes;
use dapr::dapr::proto::common::v1::{HttpExtension, InvokeRequest};
use dapr::dapr::proto::runtime::v1::app_callback_client::AppCallbackClient;
use dapr::dapr::proto::runtime::v1::app_callback_health_check_client::AppCallbackHealthCheckClient;
use dapr::dapr::proto::runtime::v1::{
    BindingEventRequest, BindingEventResponse, ListInputBindingsResponse,
    ListTopicSubscriptionsResponse, TopicEventRequest, TopicEventResponse,
};
use http::{HeaderMap, StatusCode};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::Endpoint;

use super::{AppError, AppRequest, AppResponse};

mod pool;
use pool::{Lease, Pool};

/// A gRPC call's failure, without the library's type: its code on the wire and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcStatus {
    pub code: i32,
    pub message: String,
}

impl GrpcStatus {
    /// `UNIMPLEMENTED`, which a subscriber answers for an event it will never take.
    pub fn is_unimplemented(&self) -> bool {
        self.code == tonic::Code::Unimplemented as i32
    }
}

impl From<&tonic::Status> for GrpcStatus {
    fn from(s: &tonic::Status) -> Self {
        Self {
            code: s.code() as i32,
            message: s.message().to_string(),
        }
    }
}

pub struct GrpcChannel {
    pool: Pool,
    address: String,
    token: Option<MetadataValue<tonic::metadata::Ascii>>,
    max_message: usize,
}

/// The HTTP status Dapr reports for a gRPC status code given by its number on the wire
/// (grpc-gateway's mapping); numbers gRPC does not define count as `Unknown`.
pub fn http_status_of_code(code: i32) -> StatusCode {
    http_status_of(tonic::Code::from_i32(code))
}

fn http_status_of(code: tonic::Code) -> StatusCode {
    use tonic::Code::*;
    match code {
        Ok => StatusCode::OK,
        Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        InvalidArgument | FailedPrecondition | OutOfRange => StatusCode::BAD_REQUEST,
        DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        NotFound => StatusCode::NOT_FOUND,
        AlreadyExists | Aborted => StatusCode::CONFLICT,
        PermissionDenied => StatusCode::FORBIDDEN,
        Unauthenticated => StatusCode::UNAUTHORIZED,
        ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Unknown | Internal | DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl GrpcChannel {
    /// `tls` speaks gRPC over TLS to the app (`--app-protocol grpcs`).
    pub fn new(
        host: &str,
        port: u16,
        tls: bool,
        token: Option<&str>,
        max_message: usize,
    ) -> Result<Self, AppError> {
        let scheme = if tls { "https" } else { "http" };
        let endpoint = Endpoint::from_shared(format!("{scheme}://{host}:{port}"))
            .map_err(|e| AppError::Call(e.into()))?
            .tcp_nodelay(true);
        let connector = if tls {
            Some(super::tls::app_connector(true)?)
        } else {
            None
        };
        Ok(Self {
            pool: Pool::new(endpoint, connector),
            address: format!("{host}:{port}"),
            token: token.and_then(|t| t.parse().ok()),
            max_message,
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// The call's headers as gRPC metadata, the way Dapr maps them: hop-by-hop headers are
    /// dropped and HTTP's own headers (length, type, host...) are renamed `dapr-<name>`,
    /// since as metadata they would contradict the gRPC framing.
    fn metadata(&self, headers: &HeaderMap) -> MetadataMap {
        const HTTP_ONLY: [&str; 6] = [
            "content-length",
            "content-type",
            "host",
            "accept-encoding",
            "grpc-timeout",
            "user-agent",
        ];
        let named = if headers.contains_key(http::header::CONNECTION) {
            crate::hop::named_by_connection(headers)
        } else {
            Vec::new()
        };
        let mut md = MetadataMap::with_capacity(headers.len() + 1);
        for (header, value) in headers {
            let name = header.as_str();
            if crate::hop::is_hop_by_hop(name) || name == "dapr-api-token" || named.contains(header)
            {
                continue;
            }
            let key = if HTTP_ONLY.contains(&name) {
                format!("dapr-{name}")
            } else {
                name.to_string()
            };
            let ascii = value.to_str().ok().and_then(|v| v.parse().ok());
            if let (Ok(key), Some(v)) = (MetadataKey::from_bytes(key.as_bytes()), ascii) {
                md.append(key, v);
            }
        }
        if let Some(t) = &self.token {
            md.insert("dapr-api-token", t.clone());
        }
        crate::trace_context::to_grpc_app(&mut md, headers);
        md
    }

    pub async fn invoke(&self, req: AppRequest) -> Result<AppResponse, AppError> {
        let content_type = super::content_type(&req.headers);
        let mut request = tonic::Request::new(InvokeRequest {
            method: req.path,
            data: Some(prost_types::Any {
                type_url: req.data_type,
                value: req.body.into(),
            }),
            content_type,
            http_extension: Some(HttpExtension {
                verb: super::verb_of(&req.method) as i32,
                querystring: req.query,
            }),
        });
        *request.metadata_mut() = self.metadata(&req.headers);
        let lease = self.pool.lease();
        let mut client = AppCallbackClient::new(lease.channel().clone())
            .max_decoding_message_size(self.max_message)
            .max_encoding_message_size(self.max_message);
        match client.on_invoke(request).await {
            Ok(resp) => {
                let resp = resp.into_inner();
                let mut headers = HeaderMap::new();
                super::set_content_type(&mut headers, &resp.content_type);
                let (data_type, body) = resp
                    .data
                    .map(|d| (d.type_url, Bytes::from(d.value)))
                    .unwrap_or_default();
                Ok(AppResponse {
                    status: StatusCode::OK,
                    headers,
                    body,
                    data_type,
                })
            }
            // The app answered with an error status: relayed, like an HTTP app's 4xx/5xx.
            Err(status) if status.code() != tonic::Code::Unavailable => Ok(AppResponse {
                status: http_status_of(status.code()),
                headers: HeaderMap::new(),
                body: Bytes::from(status.message().to_string()),
                data_type: String::new(),
            }),
            Err(status) => Err(AppError::Call(status.message().into())),
        }
    }

    fn client(&self, lease: &Lease) -> AppCallbackClient<tonic::transport::Channel> {
        AppCallbackClient::new(lease.channel().clone())
            .max_decoding_message_size(self.max_message)
            .max_encoding_message_size(self.max_message)
    }

    /// The app's programmatic subscriptions; an app that does not implement the call has
    /// none.
    pub async fn list_topic_subscriptions(
        &self,
    ) -> Result<ListTopicSubscriptionsResponse, GrpcStatus> {
        let mut request = tonic::Request::new(());
        *request.metadata_mut() = self.metadata(&HeaderMap::new());
        let lease = self.pool.lease();
        match self.client(&lease).list_topic_subscriptions(request).await {
            Ok(resp) => Ok(resp.into_inner()),
            Err(s) if s.code() == tonic::Code::Unimplemented => {
                Ok(ListTopicSubscriptionsResponse::default())
            }
            Err(s) => Err(GrpcStatus::from(&s)),
        }
    }

    /// Delivers one pub/sub event; `headers` become the call's metadata.
    pub async fn on_topic_event(
        &self,
        event: TopicEventRequest,
        headers: &HeaderMap,
    ) -> Result<TopicEventResponse, GrpcStatus> {
        let mut request = tonic::Request::new(event);
        *request.metadata_mut() = self.metadata(headers);
        let lease = self.pool.lease();
        self.client(&lease)
            .on_topic_event(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| GrpcStatus::from(&s))
    }

    /// The input bindings the app takes events from; none when it does not say.
    pub async fn list_input_bindings(&self) -> Result<ListInputBindingsResponse, GrpcStatus> {
        let mut request = tonic::Request::new(());
        *request.metadata_mut() = self.metadata(&HeaderMap::new());
        let lease = self.pool.lease();
        match self.client(&lease).list_input_bindings(request).await {
            Ok(resp) => Ok(resp.into_inner()),
            Err(s) if s.code() == tonic::Code::Unimplemented => {
                Ok(ListInputBindingsResponse::default())
            }
            Err(s) => Err(GrpcStatus::from(&s)),
        }
    }

    /// Delivers one input binding event.
    pub async fn on_binding_event(
        &self,
        event: BindingEventRequest,
        headers: &HeaderMap,
    ) -> Result<BindingEventResponse, GrpcStatus> {
        let mut request = tonic::Request::new(event);
        *request.metadata_mut() = self.metadata(headers);
        let lease = self.pool.lease();
        self.client(&lease)
            .on_binding_event(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| GrpcStatus::from(&s))
    }

    /// `AppCallbackHealthCheck/HealthCheck` answers OK.
    pub async fn healthy(&self) -> bool {
        let lease = self.pool.lease();
        let mut client = AppCallbackHealthCheckClient::new(lease.channel().clone());
        client.health_check(()).await.is_ok()
    }
}
