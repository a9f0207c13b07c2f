//! `invoke-bench`: measures what two sidecars add to a service invocation.
//!
//! In one run, for HTTP and for gRPC, it sends 1 KiB echo requests to an app directly and
//! through two sidecars (load generator → caller `daprd` → callee `daprd` → app): at a
//! fixed rate (open loop, latency from the scheduled send time) and at maximum throughput
//! (closed loop), and reads each sidecar's RSS and CPU time. HTTP calls go through the
//! invoke API (`/v1.0/invoke/callee/method/echo`); gRPC calls use gRPC proxying (any call
//! with `dapr-app-id` metadata). The sidecars find each other through SQLite name
//! resolution in the run's temporary directory. The report goes to stdout, progress to
//! stderr; missed targets are reported, never turned into a failing exit code.

mod app;
mod load;
mod report;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bench::sidecar::{self, Sidecar, free_ports};
use bench::stats::Summary;
use bytes::Bytes;
use clap::Parser;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

use crate::load::{CALLEE, CALLER, Endpoint, Protocol, Route};
use crate::report::{ProtocolRun, Scenario, Setup, Usage};

/// How long a sidecar may take to report healthy before the run is abandoned.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the caller may take to reach the app through the callee after both are up.
const REACHABLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the sidecars sit idle before their memory is read.
const IDLE_BEFORE_RSS: Duration = Duration::from_secs(1);

/// Benchmarks two-hop service invocation through daprd against direct calls to the app.
#[derive(Debug, Parser)]
#[command(name = "invoke-bench")]
struct Args {
    /// The daprd binary under test.
    #[arg(long, default_value = "target/release/daprd")]
    daprd: PathBuf,
    /// Protocols to measure, comma separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "http,grpc")]
    protocols: Vec<Protocol>,
    /// Request rate of the fixed-rate phase, per second.
    #[arg(long, default_value_t = 1_000)]
    rate: u32,
    /// Length of each fixed-rate phase, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Connections the fixed-rate requests are spread over (round-robin).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Concurrent closed-loop clients in the maximum-throughput phase.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Length of each maximum-throughput phase, in seconds.
    #[arg(long, default_value_t = 5)]
    max_seconds: u64,
    /// Unmeasured load before each phase, in seconds.
    #[arg(long, default_value_t = 1)]
    warmup_seconds: u64,
    /// Request and response payload size, in bytes.
    #[arg(long, default_value_t = 1_024)]
    payload: usize,
    /// Worker threads of the load generator's runtime. It shares the machine with two
    /// sidecars and the app, so more threads can slow down what is measured.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Worker threads of the app's runtime (a separate runtime in this process).
    #[arg(long, default_value_t = 1)]
    app_threads: usize,
}

impl Args {
    fn validate(&self) -> Result<()> {
        ensure!(!self.protocols.is_empty(), "--protocols must name one");
        ensure!(
            (1..=1_000_000).contains(&self.rate),
            "--rate must be 1 to 1000000"
        );
        ensure!(self.seconds > 0, "--seconds must be at least 1");
        ensure!(self.connections > 0, "--connections must be at least 1");
        ensure!(self.concurrency > 0, "--concurrency must be at least 1");
        ensure!(self.max_seconds > 0, "--max-seconds must be at least 1");
        ensure!(
            self.client_threads > 0 && self.app_threads > 0,
            "--client-threads and --app-threads must be at least 1"
        );
        ensure!(
            self.daprd.is_file(),
            "no daprd at {} (build it with `cargo build --release -p daprd`, or pass --daprd)",
            self.daprd.display()
        );
        Ok(())
    }
}

/// The measurement settings the async part needs.
#[derive(Debug, Clone, Copy)]
struct Settings {
    rate: u32,
    fixed: Duration,
    connections: usize,
    concurrency: usize,
    max: Duration,
    warmup: Duration,
}

fn main() -> Result<()> {
    let args = Args::parse();
    args.validate()?;
    // Reads `CLK_TCK` once now rather than during a measured phase.
    sidecar::cpu_time(std::process::id())?;
    tighten_timer_slack();

    let workdir = tempfile::Builder::new()
        .prefix("invoke-bench.")
        .tempdir()
        .context("cannot create a temporary directory")?;
    eprintln!("work directory {}", workdir.path().display());

    let runtime = |threads: usize, name: &str| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(name)
            .enable_all()
            .build()
            .context("cannot start an async runtime")
    };
    let app_runtime = runtime(args.app_threads, "app")?;
    let client_runtime = runtime(args.client_threads, "load")?;

    // Both apps run for the whole benchmark: the direct scenarios call them as the callee
    // sidecar does.
    let bind = || app_runtime.block_on(TcpListener::bind("127.0.0.1:0"));
    let http_app = bind().context("cannot bind the HTTP app's port")?;
    let grpc_app = bind().context("cannot bind the gRPC app's port")?;
    let http_app_port = http_app.local_addr()?.port();
    let grpc_app_port = grpc_app.local_addr()?.port();
    app_runtime.spawn(app::serve_http(http_app));
    app_runtime.spawn(app::serve_grpc(grpc_app));
    eprintln!("apps: HTTP on 127.0.0.1:{http_app_port}, gRPC on 127.0.0.1:{grpc_app_port}");

    let payload: Bytes = (0..args.payload)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36])
        .collect::<Vec<u8>>()
        .into();
    let settings = Settings {
        rate: args.rate,
        fixed: Duration::from_secs(args.seconds),
        connections: args.connections,
        concurrency: args.concurrency,
        max: Duration::from_secs(args.max_seconds),
        warmup: Duration::from_secs(args.warmup_seconds),
    };

    let mut runs = Vec::with_capacity(args.protocols.len());
    for &protocol in &args.protocols {
        let app_port = match protocol {
            Protocol::Http => http_app_port,
            Protocol::Grpc => grpc_app_port,
        };
        runs.push(run_protocol(
            &args,
            workdir.path(),
            &client_runtime,
            protocol,
            app_port,
            payload.clone(),
            settings,
        )?);
    }
    drop(client_runtime);
    drop(app_runtime);

    report::print(
        &Setup {
            payload: args.payload,
            rate: args.rate,
            seconds: args.seconds,
            connections: args.connections,
            concurrency: args.concurrency,
            max_seconds: args.max_seconds,
            warmup_seconds: args.warmup_seconds,
        },
        &runs,
    );
    Ok(())
}

/// Linux lets a normal thread's timers expire up to its timer slack (50 µs by default) late,
/// to batch wake-ups; the fixed-rate pacer wants its sleeps exact. The slack is set here, on
/// the main thread, before any other thread exists, because threads inherit it from the
/// thread that creates them and `/proc` only exposes the main thread's. If it is refused,
/// the lateness just shows in the report's `lag` columns.
fn tighten_timer_slack() {
    if let Err(e) = std::fs::write("/proc/self/timerslack_ns", "1") {
        eprintln!("cannot lower the timer slack ({e}); the pacer may run up to 50 µs late");
    }
}

/// Starts a callee sidecar in front of the app and a caller sidecar, both resolving names
/// through their own SQLite file, measures the protocol's two scenarios, and stops both.
fn run_protocol(
    args: &Args,
    workdir: &Path,
    runtime: &Runtime,
    protocol: Protocol,
    app_port: u16,
    payload: Bytes,
    settings: Settings,
) -> Result<ProtocolRun> {
    let name = protocol.name();
    let config = workdir.join(format!("config-{name}.yaml"));
    let hosts = workdir.join(format!("hosts-{name}.db"));
    std::fs::write(
        &config,
        format!(
            "apiVersion: dapr.io/v1alpha1\n\
             kind: Configuration\n\
             metadata:\n  name: bench\n\
             spec:\n  nameResolution:\n    component: sqlite\n    configuration:\n      \
             connectionString: \"{}\"\n",
            hosts.display()
        ),
    )
    .with_context(|| format!("cannot write {}", config.display()))?;

    let [callee_internal, caller_internal] = free_ports::<2>();
    let common = |internal: u16| {
        vec![
            "--config".to_string(),
            config.display().to_string(),
            "--dapr-internal-grpc-port".to_string(),
            internal.to_string(),
        ]
    };
    let mut callee_args = common(callee_internal);
    callee_args.extend([
        "--app-port".to_string(),
        app_port.to_string(),
        "--app-protocol".to_string(),
        name.to_string(),
    ]);
    // The callee first: it registers itself, and waits for the app, before it is healthy.
    let mut callee = Sidecar::spawn_with(
        &args.daprd,
        CALLEE,
        &callee_args,
        &workdir.join(format!("daprd-{name}-callee.log")),
    )?;
    callee
        .wait_healthy(HEALTH_TIMEOUT)
        .with_context(|| format!("{name} callee sidecar"))?;
    let mut caller = Sidecar::spawn_with(
        &args.daprd,
        CALLER,
        common(caller_internal),
        &workdir.join(format!("daprd-{name}-caller.log")),
    )?;
    caller
        .wait_healthy(HEALTH_TIMEOUT)
        .with_context(|| format!("{name} caller sidecar"))?;
    std::thread::sleep(IDLE_BEFORE_RSS);
    let idle_rss_kib = [caller.rss_kib()?, callee.rss_kib()?];
    eprintln!(
        "{name}: callee sidecar (pid {}) and caller sidecar (pid {}) healthy",
        callee.pid(),
        caller.pid()
    );

    let caller_port = match protocol {
        Protocol::Http => caller.http_port,
        Protocol::Grpc => caller.grpc_port,
    };
    let direct = Arc::new(Endpoint::new(
        protocol,
        Route::Direct,
        app_port,
        payload.clone(),
    )?);
    let two_hop = Arc::new(Endpoint::new(
        protocol,
        Route::TwoHop,
        caller_port,
        payload,
    )?);
    let pids = [caller.pid(), callee.pid(), std::process::id()];
    // Spawned rather than run in `block_on`, so the loops run on worker threads next to
    // the connection tasks they wake instead of hopping threads on every request.
    let measured = runtime.block_on(async move {
        tokio::spawn(measure(direct, two_hop, pids, settings))
            .await
            .context("measurement task failed")?
    });
    caller.stop()?;
    callee.stop()?;
    let (direct, two_hop, fixed_usage, max_usage) = measured?;
    Ok(ProtocolRun {
        protocol,
        direct,
        two_hop,
        fixed_usage,
        max_usage,
        idle_rss_kib,
    })
}

/// CPU time of each process at one moment.
struct CpuSample {
    at: Instant,
    cpu: [Duration; 3],
}

impl CpuSample {
    fn take(pids: [u32; 3]) -> Result<Self> {
        let mut cpu = [Duration::ZERO; 3];
        for (c, &pid) in cpu.iter_mut().zip(&pids) {
            *c = sidecar::cpu_time(pid)?;
        }
        Ok(Self {
            at: Instant::now(),
            cpu,
        })
    }

    /// Usage of each process from `self` to now, with its RSS now.
    fn usage_since(&self, pids: [u32; 3]) -> Result<[Usage; 3]> {
        let now = Self::take(pids)?;
        let wall = now.at.duration_since(self.at).as_secs_f64();
        let mut usage = [Usage {
            cpu_percent: 0.0,
            rss_kib: 0,
        }; 3];
        for (i, u) in usage.iter_mut().enumerate() {
            u.cpu_percent =
                100.0 * now.cpu[i].saturating_sub(self.cpu[i]).as_secs_f64() / wall.max(1e-9);
            u.rss_kib = sidecar::rss_kib(pids[i])?;
        }
        Ok(usage)
    }
}

type Measured = (Scenario, Scenario, [Usage; 3], [Usage; 3]);

/// Both scenarios of one protocol: warm-up, then the fixed-rate phase (direct, then
/// two-hop), then the maximum-throughput phase (direct, then two-hop). The processes'
/// usage is taken over the two-hop phases.
async fn measure(
    direct: Arc<Endpoint>,
    two_hop: Arc<Endpoint>,
    pids: [u32; 3],
    s: Settings,
) -> Result<Measured> {
    for ep in [&direct, &two_hop] {
        load::wait_reachable(ep, REACHABLE_TIMEOUT).await?;
    }
    if !s.warmup.is_zero() {
        for ep in [&direct, &two_hop] {
            eprintln!("{}: warm-up at {} req/s ...", ep.name(), s.rate);
            load::open_loop(ep, s.rate, s.warmup, s.connections).await?;
        }
    }

    let mut fixed = Vec::with_capacity(2);
    let mut fixed_usage = None;
    for ep in [&direct, &two_hop] {
        eprintln!("{}: {} req/s for {:?} ...", ep.name(), s.rate, s.fixed);
        let before = CpuSample::take(pids)?;
        let run = load::open_loop(ep, s.rate, s.fixed, s.connections).await?;
        if ep.route == Route::TwoHop {
            fixed_usage = Some(before.usage_since(pids)?);
        }
        fixed.push(run);
    }

    let mut max = Vec::with_capacity(2);
    let mut max_usage = None;
    for ep in [&direct, &two_hop] {
        eprintln!(
            "{}: {} clients for {:?} ...",
            ep.name(),
            s.concurrency,
            s.max
        );
        let before = CpuSample::take(pids)?;
        let run = load::closed_loop(ep, s.concurrency, s.warmup, s.max).await?;
        if ep.route == Route::TwoHop {
            max_usage = Some(before.usage_since(pids)?);
        }
        max.push(run);
    }

    let mut scenarios = fixed.into_iter().zip(max).zip([&direct, &two_hop]).map(
        |((fixed, max), ep)| -> Result<Scenario> {
            let summary = |samples: Vec<u64>| {
                Summary::from_samples(samples)
                    .with_context(|| format!("{}: no latency samples", ep.name()))
            };
            Ok(Scenario {
                name: ep.name(),
                fixed_per_sec: fixed.per_sec,
                fixed: summary(fixed.latency)?,
                lag: summary(fixed.lag)?,
                max_per_sec: max.per_sec,
                max: summary(max.latency)?,
            })
        },
    );
    let (Some(d), Some(t)) = (scenarios.next(), scenarios.next()) else {
        anyhow::bail!("missing scenario results");
    };
    Ok((
        d?,
        t?,
        fixed_usage.context("no usage for the fixed-rate phase")?,
        max_usage.context("no usage for the max-throughput phase")?,
    ))
}
