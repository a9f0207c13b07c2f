//! HTTP/1.1 `Upgrade: h2c` on the HTTP API port (RFC 7540 §3.2), as Dapr's server does
//! it: the request that asked is answered `101 Switching Protocols`, the connection then
//! speaks HTTP/2, and the response to that first request arrives on stream 1.
//!
//! hyper's HTTP/2 server only serves streams the client opens, so the upgrade request is
//! handed to it as if the client had sent it: once the client's preface and first
//! SETTINGS frame have been read, a HEADERS frame for stream 1 carrying the request is
//! put in front of the rest of what the client sends. Requests with a body are served as
//! HTTP/1.1 instead (a server may ignore `Upgrade`), so no body has to be replayed.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The largest frame a peer must accept before SETTINGS say otherwise.
const MAX_FRAME: usize = 16_384;

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// When `req` asks to switch to h2c and can (it has no body, and its headers fit one
/// frame): the HEADERS frame that will replay it on stream 1.
pub fn replayable_upgrade<B>(req: &Request<B>) -> Option<Vec<u8>> {
    if wants_upgrade(req) {
        headers_frame(req)
    } else {
        None
    }
}

/// Whether `req` asks to switch to h2c, and can (it has no body).
fn wants_upgrade<B>(req: &Request<B>) -> bool {
    let h = req.headers();
    req.version() == http::Version::HTTP_11
        && h.contains_key(header::UPGRADE)
        && has_token(h, header::UPGRADE, "h2c")
        && has_token(h, header::CONNECTION, "upgrade")
        && h.contains_key("http2-settings")
        && !h.contains_key(header::TRANSFER_ENCODING)
        && h.get(header::CONTENT_LENGTH).is_none_or(|v| v == "0")
}

/// HPACK "literal header field without indexing, new name", lengths without Huffman.
fn hpack_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0);
    hpack_string(out, name);
    hpack_string(out, value);
}

fn hpack_string(out: &mut Vec<u8>, s: &[u8]) {
    // An integer with a 7-bit prefix (RFC 7541 §5.1), Huffman bit clear.
    let mut n = s.len();
    if n < 127 {
        out.push(n as u8);
    } else {
        out.push(127);
        n -= 127;
        while n >= 128 {
            out.push((n % 128) as u8 | 0x80);
            n /= 128;
        }
        out.push(n as u8);
    }
    out.extend_from_slice(s);
}

/// The HEADERS frame (stream 1, END_STREAM | END_HEADERS) that stands for `req`, or
/// `None` when it would not fit one frame.
fn headers_frame<B>(req: &Request<B>) -> Option<Vec<u8>> {
    let mut block = Vec::with_capacity(256);
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let authority = req
        .headers()
        .get(header::HOST)
        .map(HeaderValue::as_bytes)
        .unwrap_or(b"localhost");
    hpack_literal(&mut block, b":method", req.method().as_str().as_bytes());
    hpack_literal(&mut block, b":scheme", b"http");
    hpack_literal(&mut block, b":path", path.as_bytes());
    hpack_literal(&mut block, b":authority", authority);
    for (name, value) in req.headers() {
        let connection_specific = channel::hop::is_hop_by_hop(name.as_str())
            || name == header::HOST
            || name.as_str() == "http2-settings";
        if !connection_specific {
            hpack_literal(&mut block, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if block.len() > MAX_FRAME {
        return None;
    }
    let len = block.len();
    let mut frame = Vec::with_capacity(9 + len);
    frame.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8]);
    frame.push(0x1); // HEADERS
    frame.push(0x1 | 0x4); // END_STREAM | END_HEADERS
    frame.extend_from_slice(&1u32.to_be_bytes());
    frame.extend_from_slice(&block);
    Some(frame)
}

/// Answers `101` and serves the connection as HTTP/2 from then on, `frame` (from
/// [`replayable_upgrade`]) standing for `req` on stream 1.
pub fn upgrade(req: Request<Incoming>, frame: Vec<u8>, router: Router) -> Response {
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => return tracing::debug!("h2c upgrade failed: {e}"),
        };
        let io = match splice(upgraded, frame).await {
            Ok(io) => io,
            Err(e) => return tracing::debug!("h2c upgrade: {e}"),
        };
        let service = hyper_util::service::TowerToHyperService::new(router);
        if let Err(e) = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(io), service)
            .await
        {
            tracing::debug!("h2c connection ended: {e}");
        }
    });
    let mut resp = Response::new(axum::body::Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
    resp
}

/// Reads the client's preface and first frame (its SETTINGS), and returns the connection
/// with `frame` replayed right after them.
async fn splice<I: AsyncRead + Unpin>(mut io: I, frame: Vec<u8>) -> io::Result<Replay<I>> {
    let mut buf = Vec::with_capacity(128);
    let mut chunk = [0u8; 1024];
    let first_frame_end = loop {
        if buf.len() >= PREFACE.len() + 9 {
            if !buf.starts_with(PREFACE) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "no HTTP/2 preface",
                ));
            }
            let h = &buf[PREFACE.len()..];
            let len = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
            let end = PREFACE.len() + 9 + len;
            if buf.len() >= end {
                break end;
            }
        }
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let rest = buf.split_off(first_frame_end);
    buf.extend_from_slice(&frame);
    buf.extend_from_slice(&rest);
    Ok(Replay {
        pending: buf,
        at: 0,
        inner: io,
    })
}

/// A connection whose first bytes come from `pending`.
struct Replay<I> {
    pending: Vec<u8>,
    at: usize,
    inner: I,
}

impl<I: AsyncRead + Unpin> AsyncRead for Replay<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.pending.len() {
            let n = (this.pending.len() - this.at).min(out.remaining());
            out.put_slice(&this.pending[this.at..this.at + n]);
            this.at += n;
            if this.at == this.pending.len() {
                this.pending = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, out)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Replay<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bodiless_upgrade_requests_switch() {
        let req = |extra: &[(&str, &str)]| {
            let mut b = Request::get("/v1.0/healthz")
                .header("host", "127.0.0.1:3500")
                .header("connection", "Upgrade, HTTP2-Settings")
                .header("upgrade", "h2c")
                .header("http2-settings", "AAMAAABkAAQCAAAAAAIAAAAA");
            for (k, v) in extra {
                b = b.header(*k, *v);
            }
            b.body(()).expect("request")
        };
        assert!(wants_upgrade(&req(&[])));
        assert!(!wants_upgrade(&req(&[("content-length", "5")])));
        let plain = Request::get("/").body(()).expect("request");
        assert!(!wants_upgrade(&plain));
    }

    #[test]
    fn the_replayed_request_is_one_headers_frame_on_stream_1() {
        let req = Request::get("/v1.0/metadata?x=1")
            .header("host", "h:1")
            .header("x-a", "b")
            .body(())
            .expect("request");
        let f = headers_frame(&req).expect("frame");
        let len = (usize::from(f[0]) << 16) | (usize::from(f[1]) << 8) | usize::from(f[2]);
        assert_eq!(len, f.len() - 9);
        assert_eq!((f[3], f[4]), (1, 5));
        assert_eq!(&f[5..9], &[0, 0, 0, 1]);
        let mut long = Vec::new();
        hpack_string(&mut long, &[b'a'; 300]);
        assert_eq!(&long[..3], &[127, 173, 1], "300 = 127 + 173");
    }
}
