//! The printed report: per-scenario latency and throughput, what the two sidecars add, and
//! the sidecars' memory and CPU, each judged against its target where there is one.

use bench::stats::{Summary, us, verdict};

use crate::load::Protocol;

/// Target for the p90 latency two sidecars add at the fixed rate, in µs.
pub const ADDED_P90_TARGET_US: f64 = 250.0;
/// Target for each sidecar's RSS at the fixed rate, in MB (MiB of VmRSS).
pub const RSS_TARGET_MB: f64 = 12.0;

/// What Dapr 1.18 adds, per the product owner's brief, for comparison.
fn dapr_added_ms(protocol: Protocol) -> f64 {
    match protocol {
        Protocol::Http => 1.0,
        Protocol::Grpc => 1.4,
    }
}

/// One scenario's results.
pub struct Scenario {
    pub name: &'static str,
    /// Latency from the scheduled send time, at the fixed rate.
    pub fixed: Summary,
    /// The rate achieved in the fixed-rate phase.
    pub fixed_per_sec: f64,
    /// The load generator's lateness (scheduled time to send), part of `fixed`.
    pub lag: Summary,
    /// Latency per request at maximum throughput.
    pub max: Summary,
    pub max_per_sec: f64,
}

/// CPU and memory of one process over one phase.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// CPU time over wall time, in % of one core.
    pub cpu_percent: f64,
    /// VmRSS at the end of the phase.
    pub rss_kib: u64,
}

/// One protocol's two scenarios and the processes' usage.
pub struct ProtocolRun {
    pub protocol: Protocol,
    pub direct: Scenario,
    pub two_hop: Scenario,
    /// Caller sidecar, callee sidecar, and the benchmark process (load generator and
    /// app), during the two-hop fixed-rate phase.
    pub fixed_usage: [Usage; 3],
    /// The same during the two-hop maximum-throughput phase.
    pub max_usage: [Usage; 3],
    /// Caller and callee RSS after start-up, before any load.
    pub idle_rss_kib: [u64; 2],
}

/// How the run was set up, for the header line.
pub struct Setup {
    pub payload: usize,
    pub rate: u32,
    pub seconds: u64,
    pub connections: usize,
    pub concurrency: usize,
    pub max_seconds: u64,
    pub warmup_seconds: u64,
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn print(setup: &Setup, runs: &[ProtocolRun]) {
    println!(
        "invoke-bench: {} B payloads echoed by the app; two-hop = load generator -> daprd \
         (caller) -> daprd (callee) -> app, direct = load generator -> app",
        setup.payload
    );
    println!(
        "fixed rate: {} req/s for {} s per scenario, open loop over {} connections, latency \
         from the scheduled send time; max throughput: {} closed-loop clients for {} s; \
         {} s warm-up before each phase",
        setup.rate,
        setup.seconds,
        setup.connections,
        setup.concurrency,
        setup.max_seconds,
        setup.warmup_seconds
    );

    println!();
    println!(
        "{:<22} {:>8} {:>8} {:>8} {:>9}   {:>12} {:>12}",
        format!("at {} req/s", setup.rate),
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "req/s",
        "lag p50 µs",
        "lag p99 µs"
    );
    for s in runs.iter().flat_map(|r| [&r.direct, &r.two_hop]) {
        println!(
            "{:<22} {:>8.1} {:>8.1} {:>8.1} {:>9.0}   {:>12.1} {:>12.1}",
            s.name,
            us(s.fixed.p50),
            us(s.fixed.p90),
            us(s.fixed.p99),
            s.fixed_per_sec,
            us(s.lag.p50),
            us(s.lag.p99)
        );
    }

    println!();
    println!(
        "{:<22} {:>8} {:>8} {:>8} {:>9}",
        format!("max, {} clients", setup.concurrency),
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "req/s"
    );
    for s in runs.iter().flat_map(|r| [&r.direct, &r.two_hop]) {
        println!(
            "{:<22} {:>8.1} {:>8.1} {:>8.1} {:>9.0}",
            s.name,
            us(s.max.p50),
            us(s.max.p90),
            us(s.max.p99),
            s.max_per_sec
        );
    }

    println!();
    println!(
        "added by two sidecars at {} req/s (2hop - direct):",
        setup.rate
    );
    for r in runs {
        let (d, t) = (&r.direct.fixed, &r.two_hop.fixed);
        let added = |two_hop: u64, direct: u64| us(two_hop) - us(direct);
        let p90 = added(t.p90, d.p90);
        println!(
            "  {:<4}  p50 {:>+7.1} µs  p90 {:>+7.1} µs  p99 {:>+7.1} µs   \
             p90 target <= {ADDED_P90_TARGET_US} µs: {:<6}  (Dapr 1.18 adds about {:.1} ms)",
            r.protocol.name(),
            added(t.p50, d.p50),
            p90,
            added(t.p99, d.p99),
            verdict(p90 <= ADDED_P90_TARGET_US),
            dapr_added_ms(r.protocol)
        );
    }
    println!("max throughput through two sidecars, relative to direct:");
    for r in runs {
        println!(
            "  {:<4}  {:>5.1} %  ({:.0} of {:.0} req/s)",
            r.protocol.name(),
            100.0 * r.two_hop.max_per_sec / r.direct.max_per_sec.max(f64::MIN_POSITIVE),
            r.two_hop.max_per_sec,
            r.direct.max_per_sec
        );
    }

    println!();
    println!(
        "sidecars during the 2hop phase at {} req/s (CPU in % of one core over the phase, RSS \
         at its end):",
        setup.rate
    );
    for r in runs {
        for (role, u) in ["caller", "callee"].iter().zip(&r.fixed_usage) {
            println!(
                "  {:<4} {role}  CPU {:>5.1} %  RSS {:>5.1} MB (target <= {RSS_TARGET_MB} MB): {}",
                r.protocol.name(),
                u.cpu_percent,
                mb(u.rss_kib),
                verdict(mb(u.rss_kib) <= RSS_TARGET_MB)
            );
        }
    }
    println!("sidecars during the 2hop phase at max throughput:");
    for r in runs {
        for (role, u) in ["caller", "callee"].iter().zip(&r.max_usage) {
            println!(
                "  {:<4} {role}  CPU {:>5.1} %  RSS {:>5.1} MB",
                r.protocol.name(),
                u.cpu_percent,
                mb(u.rss_kib)
            );
        }
    }
    println!("sidecars idle after start-up:");
    for r in runs {
        println!(
            "  {:<4} caller RSS {:.1} MB, callee RSS {:.1} MB",
            r.protocol.name(),
            mb(r.idle_rss_kib[0]),
            mb(r.idle_rss_kib[1])
        );
    }
    println!("benchmark process (load generator + app) during the 2hop phases, for context:");
    for r in runs {
        println!(
            "  {:<4} CPU {:.1} % at {} req/s, {:.1} % at max throughput",
            r.protocol.name(),
            r.fixed_usage[2].cpu_percent,
            setup.rate,
            r.max_usage[2].cpu_percent
        );
    }
}
