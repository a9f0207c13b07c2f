//! The one body type that travels through the app channel and the peer pool. It is the
//! channel's own, not a server framework's, so that the channel and the building blocks
//! compile without knowing which HTTP server the front door runs; the front door wraps
//! its server's body into it and back.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use http_body::Body as _;
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};

use crate::BoxError;

/// A byte body of any origin: whole bytes, a stream of chunks, or another body
/// (a server's request, a client's response), with its size hint kept.
pub struct Body(UnsyncBoxBody<Bytes, BoxError>);

impl Body {
    /// Wraps any body whose errors can be boxed.
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self(body.map_err(Into::into).boxed_unsync())
    }

    pub fn empty() -> Self {
        Self::new(Empty::<Bytes>::new())
    }

    /// A body read from a stream of chunks; its size is unknown, so it goes out chunked.
    pub fn from_stream<S, E>(chunks: S) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        Self::new(StreamBody::new(
            chunks.map_ok(Frame::data).map_err(Into::<BoxError>::into),
        ))
    }

    /// The body's data chunks, trailers dropped. The error is a named type rather than a
    /// boxed trait object, so that closures over the chunks stay `Send` in async code.
    pub fn into_data_stream(self) -> DataStream {
        DataStream(self)
    }
}

/// The chunks of a [`Body`], as [`Body::into_data_stream`] gives them.
pub struct DataStream(Body);

impl Stream for DataStream {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let frame = match Pin::new(&mut self.0).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(frame) => frame,
            };
            match frame {
                None => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(BodyError(e)))),
                // Trailers are not data: read on.
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Poll::Ready(Some(Ok(data)));
                    }
                }
            }
        }
    }
}

/// Why a body stopped short: the error of the body it was read from.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BodyError(pub BoxError);

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Self::new(Full::new(bytes))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn whole_bytes_keep_their_exact_size() {
        let body = Body::from(Bytes::from_static(b"hello"));
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(5));
        let collected = body.collect().await.expect("collect").to_bytes();
        assert_eq!(&collected[..], b"hello");
    }

    #[tokio::test]
    async fn a_stream_arrives_chunk_by_chunk_and_ends_on_its_error() {
        let chunks = futures::stream::iter([
            Ok(Bytes::from_static(b"a")),
            Ok(Bytes::from_static(b"b")),
            Err(std::io::Error::other("cut")),
        ]);
        let body = Body::from_stream(chunks);
        assert_eq!(http_body::Body::size_hint(&body).exact(), None);
        let got: Vec<_> = futures::StreamExt::collect(body.into_data_stream()).await;
        assert_eq!(got.len(), 3);
        assert_eq!(&got[0].as_ref().expect("a")[..], b"a");
        assert_eq!(&got[1].as_ref().expect("b")[..], b"b");
        assert_eq!(got[2].as_ref().expect_err("cut").to_string(), "cut");
    }

    #[test]
    fn an_empty_body_has_ended() {
        assert!(http_body::Body::is_end_stream(&Body::empty()));
    }
}
