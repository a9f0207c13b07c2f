//! The load: the four scenarios' endpoints and clients, the open-loop fixed-rate phase and
//! the closed-loop maximum-throughput phase.
//!
//! Every request carries the same prepared payload and is checked (status, and the echoed
//! payload byte for byte), so a misconfigured run fails instead of timing error paths. The
//! clients are state-bench's: one bare hyper connection each, HTTP/1.1 or HTTP/2, the same
//! for the direct and the through-sidecar scenarios.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bench::conn::{H2Connection, HttpConnection};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Request, StatusCode, Uri};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};

use crate::app::{Echo, EchoCodec, GRPC_PATH, HTTP_METHOD};

/// The app id of the invoked app's sidecar.
pub const CALLEE: &str = "callee";
/// The app id of the calling sidecar (which has no app).
pub const CALLER: &str = "caller";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    Http,
    Grpc,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Grpc => "grpc",
        }
    }
}

/// The path of a request: straight to the app, or load generator → caller sidecar →
/// callee sidecar → app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Direct,
    TwoHop,
}

/// Where one scenario's requests go, and everything a request needs, built once.
pub struct Endpoint {
    pub protocol: Protocol,
    pub route: Route,
    port: u16,
    /// HTTP: the request target and `Host` header.
    uri: Uri,
    host: HeaderValue,
    /// gRPC: scheme and authority of the connection, the method path, and the
    /// `dapr-app-id` metadata that makes the caller sidecar proxy the call.
    origin: Uri,
    path: PathAndQuery,
    app_id: Option<AsciiMetadataValue>,
    payload: Bytes,
}

impl Endpoint {
    /// `port` is the app's port for [`Route::Direct`], the caller sidecar's HTTP or gRPC
    /// API port for [`Route::TwoHop`].
    pub fn new(protocol: Protocol, route: Route, port: u16, payload: Bytes) -> Result<Self> {
        let uri = match route {
            Route::Direct => format!("/{HTTP_METHOD}"),
            Route::TwoHop => format!("/v1.0/invoke/{CALLEE}/method/{HTTP_METHOD}"),
        };
        Ok(Self {
            protocol,
            route,
            port,
            uri: uri.parse()?,
            host: HeaderValue::from_str(&format!("127.0.0.1:{port}"))?,
            origin: format!("http://127.0.0.1:{port}").parse()?,
            path: PathAndQuery::from_static(GRPC_PATH),
            app_id: match route {
                Route::Direct => None,
                Route::TwoHop => Some(MetadataValue::from_static(CALLEE)),
            },
            payload,
        })
    }

    /// The scenario's name in the report.
    pub fn name(&self) -> &'static str {
        match (self.protocol, self.route) {
            (Protocol::Http, Route::Direct) => "http-direct",
            (Protocol::Http, Route::TwoHop) => "http-2hop",
            (Protocol::Grpc, Route::Direct) => "grpc-direct",
            (Protocol::Grpc, Route::TwoHop) => "grpc-2hop",
        }
    }
}

/// One connection to an endpoint.
enum Client {
    Http(HttpConnection),
    Grpc(tonic::client::Grpc<H2Connection>),
}

impl Client {
    async fn open(ep: &Endpoint) -> Result<Self> {
        Ok(match ep.protocol {
            Protocol::Http => Self::Http(HttpConnection::open(ep.port).await?),
            Protocol::Grpc => {
                let connection = H2Connection::open(ep.port).await?;
                // With the origin, requests carry `:scheme` and `:authority` as a
                // channel's do.
                Self::Grpc(tonic::client::Grpc::with_origin(
                    connection,
                    ep.origin.clone(),
                ))
            }
        })
    }

    /// One echo request, checked.
    async fn call(&mut self, ep: &Endpoint) -> Result<()> {
        match self {
            Self::Http(http) => {
                let request = Request::post(ep.uri.clone())
                    .header(HOST, ep.host.clone())
                    .header(
                        CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    )
                    .body(Full::new(ep.payload.clone()))?;
                http.sender.ready().await?;
                let response = http.sender.send_request(request).await?;
                let status = response.status();
                // Read the whole body: the connection is reusable only after it.
                let body = response.into_body().collect().await?.to_bytes();
                ensure!(
                    status == StatusCode::OK,
                    "{}: HTTP {status}: {}",
                    ep.name(),
                    String::from_utf8_lossy(&body)
                );
                ensure!(
                    body == ep.payload,
                    "{}: the echo differs from the payload ({} bytes back)",
                    ep.name(),
                    body.len()
                );
            }
            Self::Grpc(grpc) => {
                let mut request = tonic::Request::new(Echo {
                    data: ep.payload.clone(),
                });
                if let Some(app_id) = &ep.app_id {
                    request.metadata_mut().insert("dapr-app-id", app_id.clone());
                }
                grpc.ready().await?;
                let response = grpc
                    .unary(request, ep.path.clone(), EchoCodec::default())
                    .await
                    .with_context(|| ep.name())?;
                ensure!(
                    response.get_ref().data == ep.payload,
                    "{}: the echo differs from the payload ({} bytes back)",
                    ep.name(),
                    response.get_ref().data.len()
                );
            }
        }
        Ok(())
    }
}

/// Retries one request on a fresh connection until it succeeds: the caller sidecar may
/// report healthy before it finds the callee's registration.
pub async fn wait_reachable(ep: &Endpoint, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt = async {
            let mut client = Client::open(ep).await?;
            client.call(ep).await
        };
        match attempt.await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(e.context(format!("{} not answering after {timeout:?}", ep.name())));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What an open-loop phase measured.
pub struct OpenLoop {
    /// Nanoseconds from each request's scheduled send time to its response.
    pub latency: Vec<u64>,
    /// Nanoseconds from each request's scheduled send time to the moment its connection
    /// task began sending it: the load generator's own lateness, part of `latency`.
    pub lag: Vec<u64>,
    /// Responses per second, from the first scheduled send to the last response.
    pub per_sec: f64,
}

/// `rate` requests per second for `duration`, sent on schedule whatever the responses
/// do (open loop), round-robin over `connections` connections.
///
/// A pacer thread sleeps until each scheduled time (`std::thread::sleep`, i.e. an hrtimer,
/// rather than tokio's millisecond timer wheel, which would bunch the sends up; see
/// `tighten_timer_slack` in main.rs) and hands
/// the time to the next connection's task, which sends the request and records the
/// latency from the scheduled time, so a slow response delays and is charged to the
/// requests queued behind it (no coordinated omission). With several connections, a
/// request only queues if a response on its connection is still outstanding after
/// `connections` send intervals.
pub async fn open_loop(
    ep: &Arc<Endpoint>,
    rate: u32,
    duration: Duration,
    connections: usize,
) -> Result<OpenLoop> {
    let mut senders = Vec::with_capacity(connections);
    let mut tasks = JoinSet::new();
    for _ in 0..connections {
        let mut client = Client::open(ep).await?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
        senders.push(tx);
        let ep = Arc::clone(ep);
        tasks.spawn(async move {
            let mut latency = Vec::new();
            let mut lag = Vec::new();
            let mut last = None;
            while let Some(scheduled) = rx.recv().await {
                let sent = Instant::now();
                client.call(&ep).await?;
                let done = Instant::now();
                lag.push(nanos(sent.saturating_duration_since(scheduled)));
                latency.push(nanos(done.saturating_duration_since(scheduled)));
                last = Some(done);
            }
            anyhow::Ok((latency, lag, last))
        });
    }

    let interval = Duration::from_secs(1) / rate;
    let total = (u128::from(rate) * duration.as_millis() / 1000) as u64;
    // A little head room so the first sends are not late already.
    let start = Instant::now() + Duration::from_millis(5);
    let pacer = tokio::task::spawn_blocking(move || {
        let mut next = start;
        for i in 0..total {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            let connection = usize::try_from(i).unwrap_or(0) % senders.len();
            if senders[connection].send(next).is_err() {
                // That connection's task failed; its error is reported below.
                break;
            }
            next += interval;
        }
        // Dropping the senders ends the connection tasks once their queues are drained.
    });

    let mut out = OpenLoop {
        latency: Vec::new(),
        lag: Vec::new(),
        per_sec: 0.0,
    };
    let mut last_done: Option<Instant> = None;
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        match joined.context("open-loop task failed")? {
            Ok((latency, lag, last)) => {
                out.latency.extend(latency);
                out.lag.extend(lag);
                last_done = last_done.max(last);
            }
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    pacer.await.context("pacer thread failed")?;
    if let Some(e) = failure {
        return Err(e.context(format!("{} at {rate} req/s", ep.name())));
    }
    let Some(last_done) = last_done else {
        bail!("{}: no request completed", ep.name());
    };
    out.per_sec = out.latency.len() as f64 / last_done.duration_since(start).as_secs_f64();
    Ok(out)
}

/// What a closed-loop phase measured.
pub struct ClosedLoop {
    /// Nanoseconds per request, of the requests sent and answered within the measured
    /// window.
    pub latency: Vec<u64>,
    pub per_sec: f64,
}

/// `concurrency` tasks on a connection each, sending the next request as soon as the
/// previous one is answered: for `warmup` unmeasured, then for `duration` measured.
/// Connections are opened before the clock starts.
pub async fn closed_loop(
    ep: &Arc<Endpoint>,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<ClosedLoop> {
    let mut clients = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        clients.push(Client::open(ep).await?);
    }
    let measure_from = Instant::now() + warmup;
    let deadline = measure_from + duration;
    let mut tasks = JoinSet::new();
    for mut client in clients {
        let ep = Arc::clone(ep);
        tasks.spawn(async move {
            let mut latency = Vec::new();
            loop {
                let start = Instant::now();
                if start >= deadline {
                    break;
                }
                client.call(&ep).await?;
                let done = Instant::now();
                if start >= measure_from && done <= deadline {
                    latency.push(nanos(done - start));
                }
            }
            anyhow::Ok(latency)
        });
    }
    let mut latency = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        latency.extend(
            joined
                .context("closed-loop task failed")?
                .with_context(|| format!("{} at maximum throughput", ep.name()))?,
        );
    }
    let per_sec = latency.len() as f64 / duration.as_secs_f64();
    Ok(ClosedLoop { latency, per_sec })
}
