//! Streamed service invocation, the HTTP API's path: bodies travel in chunks, over
//! `CallLocalStream` between sidecars, so a sidecar never holds a whole response, nor a
//! whole large request. Small requests are kept whole so that retries can resend them; a
//! streamed request cannot be replayed, so it gets timeouts and breakers but no retries.

use std::collections::HashMap;

use bytes::Bytes;
use dapr::dapr::proto::common::v1::StreamPayload;
use futures::{StreamExt, stream};
use http::{Response, StatusCode};
use proto::internals::v1::{
    InternalInvokeRequestStream, InternalInvokeResponse, InternalInvokeResponseStream,
};

use super::invoke::{
    CALLEE_APP_ID, CALLER_APP_ID, CALLER_NAMESPACE, InvokeBlock, app_error, direct_invoke_error,
    from_internal_head, header_map_to_proto, set_header, to_internal_head,
};
use crate::errors::DaprError;
use channel::{AppRequestHead, Body, BodyError, BoxError};
use std::sync::Arc;

use resiliency::{Outcome, Policy};

/// A request body: kept whole (replayable) or passed through as a stream.
pub enum RequestBody {
    Whole(Bytes),
    Stream(Body),
}

impl InvokeBlock {
    /// Invokes `head` with `body` on `target`; the response body streams back.
    pub async fn invoke_streaming(
        &self,
        target: &str,
        mut head: AppRequestHead,
        body: RequestBody,
    ) -> Result<Response<Body>, DaprError> {
        if let Some(endpoint) = self.external(target) {
            return self.call_external(target, &endpoint, head, body).await;
        }
        let (app_id, namespace) = self.target(target)?;
        set_header(&mut head.headers, CALLER_APP_ID, &self.app_id);
        set_header(&mut head.headers, CALLER_NAMESPACE, &self.namespace);
        set_header(&mut head.headers, CALLEE_APP_ID, app_id);
        let local = app_id == self.app_id && namespace == self.namespace;
        let policy = self.policies.app(app_id);
        run_with_body(target, policy, body, |body| {
            let head = head.clone();
            async move {
                if local {
                    self.call_local_streaming(head, body)
                        .await
                        .map_err(|e| app_error(target, e))
                } else {
                    self.call_remote_streaming(target, app_id, namespace, head, body)
                        .await
                }
            }
        })
        .await
    }

    /// Calls a non-Dapr endpoint directly, with its configured headers, under the policy
    /// named after it.
    async fn call_external(
        &self,
        target: &str,
        endpoint: &super::invoke::Endpoint,
        mut head: AppRequestHead,
        body: RequestBody,
    ) -> Result<Response<Body>, DaprError> {
        for (name, value) in &endpoint.headers {
            head.headers.insert(name, value.clone());
        }
        set_header(&mut head.headers, CALLER_APP_ID, &self.app_id);
        run_with_body(target, self.policies.app(target), body, |body| {
            let head = head.clone();
            async move {
                let resp = endpoint
                    .channel
                    .invoke_streaming(head, body)
                    .await
                    .map_err(|e| app_error(target, e))?;
                Ok(resp.map(Body::new))
            }
        })
        .await
    }

    /// Streams a call into this sidecar's own app.
    pub async fn call_local_streaming(
        &self,
        head: AppRequestHead,
        body: Body,
    ) -> Result<Response<Body>, channel::AppError> {
        let app = self.app.as_ref().ok_or(channel::AppError::NoChannel)?;
        let limited = Body::new(http_body_util::Limited::new(body, self.max_message));
        app.invoke_streaming(head, limited, self.max_message).await
    }

    async fn call_remote_streaming(
        &self,
        target: &str,
        app_id: &str,
        namespace: &str,
        head: AppRequestHead,
        body: Body,
    ) -> Result<Response<Body>, DaprError> {
        let mut peer = self.peer_for(target, app_id, namespace).await?;
        let method = head.path.clone();
        let first = InternalInvokeRequestStream {
            request: Some(to_internal_head(head)),
            payload: None,
        };
        // A body that fails mid-way ends the stream; the callee then sees a short body.
        let chunks = body
            .into_data_stream()
            .enumerate()
            .take_while(|(_, chunk)| futures::future::ready(chunk.is_ok()))
            .filter_map(|(seq, chunk)| {
                futures::future::ready(chunk.ok().map(|data| InternalInvokeRequestStream {
                    request: None,
                    payload: Some(StreamPayload {
                        data: data.to_vec(),
                        seq: seq as u64,
                    }),
                }))
            });
        let outbound = stream::once(async move { first }).chain(chunks);
        let mut inbound = peer
            .call_local_stream(&method, outbound)
            .await
            .map_err(|e| super::invoke::peer_error(target, &e))?;
        let first = inbound
            .message()
            .await
            .map_err(|e| {
                direct_invoke_error(StatusCode::INTERNAL_SERVER_ERROR, e.message().to_string())
            })?
            .ok_or_else(|| {
                direct_invoke_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "empty response stream".into(),
                )
            })?;
        let head = first.response.unwrap_or_default();
        let body = payload_body(first.payload, inbound, |m| m.payload);
        let (status, headers) = from_internal_head(head);
        let mut resp = Response::new(body);
        *resp.status_mut() = status;
        *resp.headers_mut() = headers;
        Ok(resp)
    }
}

/// The body a `CallLocalStream` message stream carries: the payload of the first message
/// (already read, for its head), then each later message's, ending at the first error.
pub fn payload_body<M, E, S>(
    first: Option<StreamPayload>,
    rest: S,
    payload: fn(M) -> Option<StreamPayload>,
) -> Body
where
    S: futures::Stream<Item = Result<M, E>> + Send + 'static,
    M: Send + 'static,
    E: Into<BoxError> + Send + 'static,
{
    let leading = first.map(|p| Ok::<Bytes, E>(Bytes::from(p.data)));
    let rest = rest.filter_map(move |m| {
        futures::future::ready(match m {
            Ok(m) => payload(m).map(|p| Ok(Bytes::from(p.data))),
            Err(e) => Some(Err(e)),
        })
    });
    Body::from_stream(stream::iter(leading).chain(rest))
}

/// Runs one call under `policy`, giving each attempt its body: a whole body again on every
/// retry, a stream only once (so a streamed call is never retried).
async fn run_with_body<F, Fut>(
    target: &str,
    policy: Arc<Policy>,
    body: RequestBody,
    mut call: F,
) -> Result<Response<Body>, DaprError>
where
    F: FnMut(Body) -> Fut,
    Fut: std::future::Future<Output = Result<Response<Body>, DaprError>>,
{
    let (whole, mut stream) = match body {
        RequestBody::Whole(b) => (Some(b), None),
        RequestBody::Stream(s) => (None, Some(s)),
    };
    let replayable = whole.is_some();
    let attempt = || {
        let body = match &whole {
            Some(b) => Body::from(b.clone()),
            None => stream.take().unwrap_or_else(Body::empty),
        };
        call(body)
    };
    let classify = |r: &Result<Response<Body>, DaprError>| match r {
        Ok(resp) if resp.status().is_server_error() => Outcome::Http(resp.status().as_u16()),
        Ok(_) => Outcome::Success,
        Err(e) if e.unreachable => Outcome::Transport,
        Err(e) => Outcome::Http(e.http.as_u16()),
    };
    let outcome = if replayable {
        policy.run(attempt, classify).await
    } else {
        policy.run_once(attempt, classify).await
    };
    outcome.map_err(|e| {
        direct_invoke_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to invoke, id: {target}, err: {e}"),
        )
    })?
}

impl InvokeBlock {
    /// The callee's side of `CallLocalStream`, without the server: the request (its head
    /// from the first message, its body from the rest) streams into the app, and the
    /// app's response comes back as the messages to send, head first, then chunk by chunk.
    pub async fn serve_local_stream(
        &self,
        head: AppRequestHead,
        body: Body,
    ) -> Result<
        impl futures::Stream<Item = Result<InternalInvokeResponseStream, BodyError>> + Send + 'static,
        channel::AppError,
    > {
        let resp = self.call_local_streaming(head, body).await?;
        let (parts, body) = resp.into_parts();
        let head = InternalInvokeResponseStream {
            response: Some(InternalInvokeResponse {
                status: Some(proto::internals::v1::Status {
                    code: i32::from(parts.status.as_u16()),
                    message: parts
                        .status
                        .canonical_reason()
                        .unwrap_or_default()
                        .to_string(),
                    details: Vec::new(),
                }),
                headers: header_map_to_proto(&parts.headers),
                trailers: HashMap::new(),
                message: None,
            }),
            payload: None,
        };
        let chunks = body.into_data_stream().enumerate().map(|(seq, chunk)| {
            chunk.map(|data| InternalInvokeResponseStream {
                response: None,
                payload: Some(StreamPayload {
                    data: data.to_vec(),
                    seq: seq as u64,
                }),
            })
        });
        Ok(stream::once(async move { Ok(head) }).chain(chunks))
    }
}
