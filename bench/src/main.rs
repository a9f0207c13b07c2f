//! `state-bench`: measures what the sidecar costs an application using the state API.
//!
//! In one run it measures `daprd`'s start-to-healthy time (with a Redis state store and
//! with the embedded in-memory default), its idle resident memory, and GET/SAVE latency
//! and throughput through its HTTP and gRPC APIs next to the same operations sent straight
//! to the same Redis. The report goes to stdout, progress to stderr. Missed targets are
//! reported, never turned into a failing exit code: this is a benchmark, not a test.

mod redis_server;
mod scenarios;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use clap::Parser;

use bench::sidecar::{self, Sidecar};
use bench::stats::{Ratio, Report, Row, Startup};

use crate::redis_server::Redis;
use crate::scenarios::{GrpcClient, Settings, Workload};

/// Idle-memory target for the sidecar, in MB (MiB of VmRSS).
const RSS_TARGET_MB: f64 = 10.0;
/// Start-to-healthy target, in milliseconds, judged on the median.
const STARTUP_TARGET_MS: f64 = 50.0;
/// How long a sidecar may take to report healthy before the run is abandoned.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the sidecar sits idle before its memory is read.
const IDLE_BEFORE_RSS: Duration = Duration::from_secs(1);

/// Benchmarks daprd's state API against direct Redis, and its start-up time and memory.
#[derive(Debug, Parser)]
#[command(name = "state-bench")]
struct Args {
    /// The daprd binary under test.
    #[arg(long, default_value = "target/release/daprd")]
    daprd: PathBuf,
    /// Port of a Redis already listening on 127.0.0.1; without it a private redis-server
    /// is started on a free port and stopped at the end.
    #[arg(long)]
    redis_port: Option<u16>,
    /// The redis-server binary started when --redis-port is not given.
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
    /// Measured operations per scenario in the sequential latency phase.
    #[arg(long, default_value_t = 20_000)]
    ops: usize,
    /// Unmeasured operations before each latency phase.
    #[arg(long, default_value_t = 2_000)]
    warmup: usize,
    /// Concurrent tasks in the throughput phase.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Length of each throughput phase, in seconds.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Start-to-healthy measurements per sidecar configuration.
    #[arg(long, default_value_t = 10)]
    start_runs: usize,
    /// Worker threads of the benchmark's own runtime. The client shares the machine with
    /// daprd and Redis, so more threads can slow down what is measured.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Client of the gRPC scenarios: `raw` is tonic's generated client on a bare hyper
    /// HTTP/2 connection (as lean as the HTTP/1.1 client); `channel` is the same client on
    /// a `tonic::transport::Channel`, whose tower `Buffer` adds a task hop to every call.
    #[arg(long, value_enum, default_value_t = GrpcClient::Raw)]
    grpc_client: GrpcClient,
}

impl Args {
    fn validate(&self) -> Result<()> {
        ensure!(self.ops > 0, "--ops must be at least 1");
        ensure!(self.concurrency > 0, "--concurrency must be at least 1");
        ensure!(self.seconds > 0, "--seconds must be at least 1");
        ensure!(self.start_runs > 0, "--start-runs must be at least 1");
        ensure!(
            self.client_threads > 0,
            "--client-threads must be at least 1"
        );
        ensure!(
            self.daprd.is_file(),
            "no daprd at {} (build it with `cargo build --release -p daprd`, or pass --daprd)",
            self.daprd.display()
        );
        Ok(())
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    args.validate()?;

    let workdir = tempfile::Builder::new()
        .prefix("state-bench.")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let resources = workdir.path().join("resources");
    let logs = workdir.path().join("logs");
    std::fs::create_dir_all(&logs)?;

    let mut redis = match args.redis_port {
        Some(port) => Redis::external(port),
        None => Redis::start(&args.redis_server, workdir.path())?,
    };
    redis.wait_ready(Duration::from_secs(10))?;
    sidecar::write_redis_component(&resources, redis.port)?;
    eprintln!(
        "redis on 127.0.0.1:{}, work directory {}",
        redis.port,
        workdir.path().display()
    );

    // Start-up first, while the benchmark has no runtime threads competing for the CPU.
    let startups = vec![
        Startup {
            label: "redis",
            times: measure_startup(&args, Some(&resources), &logs, "redis")?,
        },
        Startup {
            label: "embedded",
            times: measure_startup(&args, None, &logs, "embedded")?,
        },
    ];
    let idle_rss_embedded_kib = {
        let mut daprd = Sidecar::spawn(&args.daprd, None, &logs.join("daprd-embedded-rss.log"))?;
        daprd.wait_healthy(HEALTH_TIMEOUT)?;
        std::thread::sleep(IDLE_BEFORE_RSS);
        let rss = daprd.rss_kib()?;
        daprd.stop()?;
        rss
    };

    // The sidecar that serves the load phases.
    let mut daprd = Sidecar::spawn(&args.daprd, Some(&resources), &logs.join("daprd.log"))?;
    daprd.wait_healthy(HEALTH_TIMEOUT)?;
    std::thread::sleep(IDLE_BEFORE_RSS);
    let idle_rss_kib = daprd.rss_kib()?;

    let workload = Arc::new(Workload::new(redis.port, daprd.http_port, daprd.grpc_port)?);
    let settings = Settings {
        warmup: args.warmup,
        ops: args.ops,
        concurrency: args.concurrency,
        duration: Duration::from_secs(args.seconds),
        grpc_client: args.grpc_client,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Spawned rather than run in `block_on`, so the loops run on a worker thread next to
    // the connection tasks they wake instead of hopping threads on every operation.
    let outcomes = runtime.block_on(async move {
        tokio::spawn(scenarios::run_all(workload, settings))
            .await
            .context("scenario task failed")?
    })?;
    let loaded_rss_kib = daprd.rss_kib()?;
    daprd.stop()?;
    drop(runtime);

    let ratio = |sidecar: &'static str, direct: &'static str| Ratio { sidecar, direct };
    let report = Report {
        rows: outcomes
            .iter()
            .map(|o| Row {
                name: o.scenario.name(),
                latency: o.latency,
                ops_per_sec: o.ops_per_sec,
            })
            .collect(),
        ratios: vec![
            ratio("sidecar-http GET", "redis-direct GET"),
            ratio("sidecar-http SAVE", "redis-direct SET"),
            ratio("sidecar-grpc GET", "redis-direct GET"),
            ratio("sidecar-grpc SAVE", "redis-direct SET"),
        ],
        idle_rss_kib,
        idle_rss_embedded_kib,
        loaded_rss_kib,
        startups,
        rss_target_mb: RSS_TARGET_MB,
        startup_target_ms: STARTUP_TARGET_MS,
    };
    println!(
        "state-bench: {} keys, {} B values; latency: {} ops after {} warm-up on one connection; \
         throughput: {} concurrent clients for {} s; gRPC client: {}",
        scenarios::KEYS,
        scenarios::VALUE_LEN,
        args.ops,
        args.warmup,
        args.concurrency,
        args.seconds,
        args.grpc_client.name()
    );
    println!();
    report.print();
    Ok(())
}

/// Spawns `daprd` `--start-runs` times and returns each spawn-to-healthy time; every
/// instance is stopped (SIGTERM, wait) before the next starts.
fn measure_startup(
    args: &Args,
    resources: Option<&Path>,
    logs: &Path,
    label: &str,
) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(args.start_runs);
    for run in 1..=args.start_runs {
        let log = logs.join(format!("daprd-start-{label}-{run}.log"));
        let mut daprd = Sidecar::spawn(&args.daprd, resources, &log)?;
        let took = daprd
            .wait_healthy(HEALTH_TIMEOUT)
            .with_context(|| format!("start-up run {run} ({label})"))?;
        daprd.stop()?;
        eprintln!(
            "start to healthy ({label}) {run}/{}: {:.1} ms",
            args.start_runs,
            took.as_secs_f64() * 1e3
        );
        times.push(took);
    }
    Ok(times)
}
