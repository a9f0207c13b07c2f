//! The six measured scenarios: GET and SET/SAVE of 1 KiB values over 1,000 keys, directly
//! against Redis, through the sidecar's HTTP API, and through its gRPC API.
//!
//! Each scenario first runs a closed loop on one connection (concurrency 1) and records
//! every operation's latency, then counts completed operations of `concurrency` tasks for
//! a fixed time. Payloads, URIs and keys are built once up front, so the per-operation
//! client work is the request itself and the numbers show the server side.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bench::conn::{H2Connection, HttpConnection};
use bench::sidecar::{APP_ID, STORE};
use bench::stats::Summary;
use bytes::Bytes;
use dapr::dapr::proto::common::v1::StateItem;
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use dapr::dapr::proto::runtime::v1::{GetStateRequest, SaveStateRequest};
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Request, StatusCode, Uri};
use redis::aio::ConnectionManager;
use tokio::task::JoinSet;
use tonic::client::GrpcService;
use tonic::codegen::StdError;
use tonic::transport::{Channel, Endpoint};

/// Size of the working set.
pub const KEYS: usize = 1_000;
/// Size of every value.
pub const VALUE_LEN: usize = 1_024;

/// Where the operations go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    RedisDirect,
    SidecarHttp,
    SidecarGrpc,
}

/// What the operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get,
    Save,
}

#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub target: Target,
    pub op: Op,
}

impl Scenario {
    pub const fn new(target: Target, op: Op) -> Self {
        Self { target, op }
    }

    /// The scenario's name in the report.
    pub fn name(self) -> &'static str {
        match (self.target, self.op) {
            (Target::RedisDirect, Op::Get) => "redis-direct GET",
            (Target::RedisDirect, Op::Save) => "redis-direct SET",
            (Target::SidecarHttp, Op::Get) => "sidecar-http GET",
            (Target::SidecarHttp, Op::Save) => "sidecar-http SAVE",
            (Target::SidecarGrpc, Op::Get) => "sidecar-grpc GET",
            (Target::SidecarGrpc, Op::Save) => "sidecar-grpc SAVE",
        }
    }
}

/// All scenarios, in report order.
pub const ALL: [Scenario; 6] = [
    Scenario::new(Target::RedisDirect, Op::Get),
    Scenario::new(Target::RedisDirect, Op::Save),
    Scenario::new(Target::SidecarHttp, Op::Get),
    Scenario::new(Target::SidecarHttp, Op::Save),
    Scenario::new(Target::SidecarGrpc, Op::Get),
    Scenario::new(Target::SidecarGrpc, Op::Save),
];

/// Which client drives the gRPC scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GrpcClient {
    /// tonic's generated client on a bare hyper HTTP/2 connection: one task hop per call,
    /// like the HTTP/1.1 client.
    Raw,
    /// tonic's generated client on a `tonic::transport::Channel`, as SDKs use it: every
    /// call also passes through the channel's tower `Buffer` worker task.
    Channel,
}

impl GrpcClient {
    pub fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Channel => "channel",
        }
    }
}

/// How much to run.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub warmup: usize,
    pub ops: usize,
    pub concurrency: usize,
    pub duration: Duration,
    pub grpc_client: GrpcClient,
}

/// The result of one scenario.
pub struct Outcome {
    pub scenario: Scenario,
    pub latency: Summary,
    pub ops_per_sec: f64,
}

/// Endpoints and every payload, prepared before any clock runs.
pub struct Workload {
    redis_url: String,
    grpc_url: String,
    /// `grpc_url` as the request origin (scheme and authority) of the raw gRPC client.
    grpc_origin: Uri,
    grpc_port: u16,
    http_port: u16,
    http_host: HeaderValue,
    /// Keys as the application names them.
    keys: Vec<String>,
    /// Keys as the sidecar stores them in Redis (`<app id>||<key>`), which the direct
    /// client uses so both read and write the very same hashes.
    storage_keys: Vec<String>,
    /// The value as gRPC sends it: opaque bytes, stored as they are.
    raw_value: Vec<u8>,
    /// The value as the sidecar stores an HTTP-saved JSON string: the JSON text, quotes
    /// included. The direct client writes exactly these bytes.
    stored_value: Bytes,
    get_uris: Vec<Uri>,
    save_uri: Uri,
    save_bodies: Vec<Bytes>,
}

impl Workload {
    pub fn new(redis_port: u16, http_port: u16, grpc_port: u16) -> Result<Self> {
        const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let value: String = ALPHABET.chars().cycle().take(VALUE_LEN).collect();
        let keys: Vec<String> = (0..KEYS).map(|i| format!("bench-key-{i:04}")).collect();
        let storage_keys = keys.iter().map(|k| format!("{APP_ID}||{k}")).collect();
        let get_uris = keys
            .iter()
            .map(|k| format!("/v1.0/state/{STORE}/{k}").parse::<Uri>())
            .collect::<Result<Vec<_>, _>>()?;
        let save_bodies = keys
            .iter()
            .map(|k| {
                serde_json::to_vec(&serde_json::json!([{ "key": k, "value": value }]))
                    .map(Bytes::from)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            redis_url: format!("redis://127.0.0.1:{redis_port}/"),
            grpc_url: format!("http://127.0.0.1:{grpc_port}"),
            grpc_origin: format!("http://127.0.0.1:{grpc_port}").parse()?,
            grpc_port,
            http_port,
            http_host: HeaderValue::from_str(&format!("127.0.0.1:{http_port}"))?,
            storage_keys,
            stored_value: Bytes::from(serde_json::to_vec(&value)?),
            raw_value: value.into_bytes(),
            keys,
            get_uris,
            save_uri: format!("/v1.0/state/{STORE}").parse()?,
            save_bodies,
        })
    }

    async fn redis(&self) -> Result<ConnectionManager> {
        let client = redis::Client::open(self.redis_url.as_str())?;
        ConnectionManager::new(client)
            .await
            .with_context(|| format!("cannot connect to {}", self.redis_url))
    }

    /// Writes every key directly, in the sidecar's layout, so GETs always find a value
    /// whichever scenario runs first.
    async fn seed(&self) -> Result<()> {
        let mut conn = self.redis().await?;
        let mut pipe = redis::pipe();
        for key in &self.storage_keys {
            pipe.cmd("HSET")
                .arg(key)
                .arg("data")
                .arg(&self.stored_value[..])
                .arg("version")
                .arg(1)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn)
            .await
            .context("seeding the keys")?;
        Ok(())
    }

    /// Deletes the benchmark's keys: the Redis may be someone else's (`--redis-port`).
    async fn clean_up(&self) -> Result<()> {
        let mut conn = self.redis().await?;
        let _deleted: i64 = redis::cmd("DEL")
            .arg(&self.storage_keys)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}

/// One client. An enum rather than a trait object: three fixed kinds, no boxing of the
/// per-operation future. The variants' sizes may differ, but there are only a few
/// long-lived clients, and boxing would add an indirection to every operation.
#[allow(clippy::large_enum_variant)]
enum Client {
    /// `ConnectionManager` over one multiplexed connection, as the sidecar itself uses.
    Redis(ConnectionManager),
    Http(HttpConnection),
    /// One tonic HTTP/2 channel; clones share it, as SDK clients do.
    GrpcChannel(DaprClient<Channel>),
    /// One bare HTTP/2 connection per client (see [`Client::fork`]).
    GrpcRaw(DaprClient<H2Connection>),
}

impl Client {
    async fn connect(target: Target, w: &Workload, grpc: GrpcClient) -> Result<Self> {
        Ok(match (target, grpc) {
            (Target::RedisDirect, _) => Self::Redis(w.redis().await?),
            (Target::SidecarHttp, _) => Self::Http(HttpConnection::open(w.http_port).await?),
            (Target::SidecarGrpc, GrpcClient::Channel) => {
                let channel = Endpoint::from_shared(w.grpc_url.clone())?
                    .tcp_nodelay(true)
                    .connect()
                    .await
                    .with_context(|| format!("cannot connect to {}", w.grpc_url))?;
                Self::GrpcChannel(DaprClient::new(channel))
            }
            (Target::SidecarGrpc, GrpcClient::Raw) => Self::raw_grpc(w).await?,
        })
    }

    async fn raw_grpc(w: &Workload) -> Result<Self> {
        let connection = H2Connection::open(w.grpc_port).await?;
        // With the origin, requests carry `:scheme` and `:authority` as a channel's do.
        Ok(Self::GrpcRaw(DaprClient::with_origin(
            connection,
            w.grpc_origin.clone(),
        )))
    }

    /// A client for one more concurrent task. Redis and the gRPC channel multiplex many
    /// requests on their one connection, so they share it, as applications and SDK
    /// clients do; HTTP/1.1 cannot, so it opens another connection.
    ///
    /// The raw gRPC client opens another connection too, like HTTP. Sharing its one
    /// HTTP/2 connection among the tasks was measured against this (16 tasks, alternating
    /// 3 s rounds, two each, one run): GET 26.9k/28.5k ops/s shared vs 22.1k/29.6k per task,
    /// SAVE 21.1k/20.1k shared vs 27.0k/21.1k per task. The difference is within the
    /// noise, slightly in favour of a connection per task, which also gives both sidecar
    /// APIs the same number of connections and connection tasks on both sides.
    /// (`&mut` only so that futures holding it need `Client: Send`, not `Sync`.)
    async fn fork(&mut self, w: &Workload) -> Result<Self> {
        Ok(match self {
            Self::Redis(conn) => Self::Redis(conn.clone()),
            Self::Http(_) => Self::Http(HttpConnection::open(w.http_port).await?),
            Self::GrpcChannel(client) => Self::GrpcChannel(client.clone()),
            Self::GrpcRaw(_) => Self::raw_grpc(w).await?,
        })
    }

    /// One operation on key number `i`, checked for success so a misconfigured run
    /// fails instead of timing error paths.
    async fn call(&mut self, op: Op, w: &Workload, i: usize) -> Result<()> {
        match self {
            Self::Redis(conn) => match op {
                Op::Get => {
                    let (data, _version): (Option<Vec<u8>>, Option<String>) = redis::cmd("HMGET")
                        .arg(&w.storage_keys[i])
                        .arg("data")
                        .arg("version")
                        .query_async(conn)
                        .await?;
                    ensure!(data.is_some(), "HMGET {}: no data", w.storage_keys[i]);
                }
                Op::Save => {
                    let _added: i64 = redis::cmd("HSET")
                        .arg(&w.storage_keys[i])
                        .arg("data")
                        .arg(&w.stored_value[..])
                        .arg("version")
                        .arg(1)
                        .query_async(conn)
                        .await?;
                }
            },
            Self::Http(http) => {
                let (request, expected) = match op {
                    Op::Get => (
                        Request::get(w.get_uris[i].clone())
                            .header(HOST, w.http_host.clone())
                            .body(Full::new(Bytes::new()))?,
                        StatusCode::OK,
                    ),
                    Op::Save => (
                        Request::post(w.save_uri.clone())
                            .header(HOST, w.http_host.clone())
                            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                            .body(Full::new(w.save_bodies[i].clone()))?,
                        StatusCode::NO_CONTENT,
                    ),
                };
                http.sender.ready().await?;
                let response = http.sender.send_request(request).await?;
                let status = response.status();
                // Read the whole body: the connection is reusable only after it.
                let body = response.into_body().collect().await?.to_bytes();
                ensure!(
                    status == expected,
                    "{op:?} {}: HTTP {status}: {}",
                    w.keys[i],
                    String::from_utf8_lossy(&body)
                );
            }
            Self::GrpcChannel(client) => grpc_call(client, op, w, i).await?,
            Self::GrpcRaw(client) => grpc_call(client, op, w, i).await?,
        }
        Ok(())
    }
}

/// One GetState or SaveState call with tonic's generated client over any transport.
async fn grpc_call<T>(client: &mut DaprClient<T>, op: Op, w: &Workload, i: usize) -> Result<()>
where
    T: GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: hyper::body::Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as hyper::body::Body>::Error: Into<StdError> + Send,
{
    match op {
        Op::Get => {
            let response = client
                .get_state(GetStateRequest {
                    store_name: STORE.to_string(),
                    key: w.keys[i].clone(),
                    ..Default::default()
                })
                .await?;
            ensure!(
                !response.get_ref().data.is_empty(),
                "GetState {}: no data",
                w.keys[i]
            );
        }
        Op::Save => {
            client
                .save_state(SaveStateRequest {
                    store_name: STORE.to_string(),
                    states: vec![StateItem {
                        key: w.keys[i].clone(),
                        value: w.raw_value.clone(),
                        ..Default::default()
                    }],
                })
                .await?;
        }
    }
    Ok(())
}

/// Runs every scenario in [`ALL`] order, then removes the keys.
pub async fn run_all(w: Arc<Workload>, settings: Settings) -> Result<Vec<Outcome>> {
    w.seed().await?;
    let mut outcomes = Vec::with_capacity(ALL.len());
    for scenario in ALL {
        eprintln!("running {} ...", scenario.name());
        let outcome = run(scenario, &w, settings)
            .await
            .with_context(|| scenario.name())?;
        outcomes.push(outcome);
    }
    w.clean_up().await?;
    Ok(outcomes)
}

async fn run(scenario: Scenario, w: &Arc<Workload>, s: Settings) -> Result<Outcome> {
    let mut client = Client::connect(scenario.target, w, s.grpc_client).await?;
    let samples = closed_loop(&mut client, scenario.op, w, s.warmup, s.ops).await?;
    let latency = Summary::from_samples(samples).context("no latency samples")?;
    let ops_per_sec = throughput(&mut client, scenario.op, w, s.concurrency, s.duration).await?;
    Ok(Outcome {
        scenario,
        latency,
        ops_per_sec,
    })
}

/// Warm-up, then `ops` operations one after another, each timed in nanoseconds.
async fn closed_loop(
    client: &mut Client,
    op: Op,
    w: &Workload,
    warmup: usize,
    ops: usize,
) -> Result<Vec<u64>> {
    for i in 0..warmup {
        client.call(op, w, i % KEYS).await?;
    }
    let mut samples = Vec::with_capacity(ops);
    for i in 0..ops {
        let start = Instant::now();
        client.call(op, w, i % KEYS).await?;
        samples.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    Ok(samples)
}

/// `concurrency` tasks, each a closed loop, for `duration`; returns completed ops per
/// second. Connections are opened before the clock starts.
async fn throughput(
    client: &mut Client,
    op: Op,
    w: &Arc<Workload>,
    concurrency: usize,
    duration: Duration,
) -> Result<f64> {
    let mut clients = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        clients.push(client.fork(w).await?);
    }
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = JoinSet::new();
    for (task, mut client) in clients.into_iter().enumerate() {
        let w = Arc::clone(w);
        tasks.spawn(async move {
            // Spread the tasks over the key set so they rarely touch the same key at once.
            let mut i = task * KEYS / concurrency;
            let mut done: u64 = 0;
            while Instant::now() < deadline {
                client.call(op, &w, i % KEYS).await?;
                done += 1;
                i += 1;
            }
            anyhow::Ok(done)
        });
    }
    let mut total: u64 = 0;
    while let Some(joined) = tasks.join_next().await {
        total += joined.context("throughput task failed")??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}
