//! Percentiles and the printed report. Latencies are kept as raw nanosecond samples and
//! sorted once: at tens of thousands of samples that is exact and cheaper than adding a
//! histogram dependency.

use std::time::Duration;

/// Latency distribution of one closed-loop run.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub mean: u64,
}

impl Summary {
    /// Summarises nanosecond samples; `None` when there are none.
    pub fn from_samples(mut samples: Vec<u64>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let total: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        let mean = u64::try_from(total / samples.len() as u128).unwrap_or(u64::MAX);
        Some(Self {
            p50: percentile(&samples, 50.0),
            p90: percentile(&samples, 90.0),
            p99: percentile(&samples, 99.0),
            mean,
        })
    }
}

/// Nearest-rank percentile of sorted, non-empty samples.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Minimum and median of start-up times; `None` when there are none.
pub fn min_median(times: &[Duration]) -> Option<(Duration, Duration)> {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    let min = *sorted.first()?;
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    };
    Some((min, median))
}

pub fn us(ns: u64) -> f64 {
    ns as f64 / 1_000.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

pub fn verdict(met: bool) -> &'static str {
    if met { "MET" } else { "MISSED" }
}

/// One row of the latency/throughput table.
pub struct Row {
    pub name: &'static str,
    pub latency: Summary,
    pub ops_per_sec: f64,
}

/// A through-sidecar scenario and the direct-Redis scenario it is compared with.
pub struct Ratio {
    pub sidecar: &'static str,
    pub direct: &'static str,
}

/// Start-to-healthy times of one sidecar configuration.
pub struct Startup {
    pub label: &'static str,
    pub times: Vec<Duration>,
}

/// Everything one run measured, printed by [`Report::print`].
pub struct Report {
    pub rows: Vec<Row>,
    pub ratios: Vec<Ratio>,
    pub idle_rss_kib: u64,
    pub idle_rss_embedded_kib: u64,
    pub loaded_rss_kib: u64,
    pub startups: Vec<Startup>,
    pub rss_target_mb: f64,
    pub startup_target_ms: f64,
}

impl Report {
    pub fn print(&self) {
        println!(
            "{:<20} {:>9} {:>9} {:>9} {:>9} {:>11}",
            "scenario", "p50 µs", "p90 µs", "p99 µs", "mean µs", "ops/s"
        );
        for r in &self.rows {
            let l = r.latency;
            println!(
                "{:<20} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>11.0}",
                r.name,
                us(l.p50),
                us(l.p90),
                us(l.p99),
                us(l.mean),
                r.ops_per_sec
            );
        }

        println!();
        println!("through-sidecar p50 / direct-redis p50:");
        for ratio in &self.ratios {
            let (Some(s), Some(d)) = (self.row(ratio.sidecar), self.row(ratio.direct)) else {
                continue;
            };
            println!(
                "  {:<18} / {:<17} p50 {:>5.2}x   (throughput {:>4.2}x of direct)",
                s.name,
                d.name,
                s.latency.p50 as f64 / d.latency.p50.max(1) as f64,
                s.ops_per_sec / d.ops_per_sec.max(f64::MIN_POSITIVE)
            );
        }

        println!();
        println!("added by the sidecar, p50 (through-sidecar p50 - direct-redis p50):");
        for ratio in &self.ratios {
            let (Some(s), Some(d)) = (self.row(ratio.sidecar), self.row(ratio.direct)) else {
                continue;
            };
            println!(
                "  {:<18} - {:<17} {:>+8.1} µs",
                s.name,
                d.name,
                us(s.latency.p50) - us(d.latency.p50)
            );
        }

        println!();
        let idle_mb = self.idle_rss_kib as f64 / 1024.0;
        println!(
            "idle RSS: {idle_mb:.1} MB (target <= {} MB): {}",
            self.rss_target_mb,
            verdict(idle_mb <= self.rss_target_mb)
        );
        println!(
            "idle RSS, embedded in-memory store: {:.1} MB",
            self.idle_rss_embedded_kib as f64 / 1024.0
        );
        println!(
            "RSS after the load phases: {:.1} MB",
            self.loaded_rss_kib as f64 / 1024.0
        );
        for s in &self.startups {
            let Some((min, median)) = min_median(&s.times) else {
                continue;
            };
            println!(
                "start to healthy ({}, {} runs): min {:.1} ms, median {:.1} ms (target <= {} ms): {}",
                s.label,
                s.times.len(),
                ms(min),
                ms(median),
                self.startup_target_ms,
                verdict(ms(median) <= self.startup_target_ms)
            );
        }
    }

    fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Summary::from_samples((1..=100).rev().collect()).expect("samples");
        assert_eq!((s.p50, s.p90, s.p99), (50, 90, 99));
        assert_eq!(s.mean, 50);
        let one = Summary::from_samples(vec![7]).expect("one sample");
        assert_eq!((one.p50, one.p99), (7, 7));
        assert!(Summary::from_samples(Vec::new()).is_none());
    }

    #[test]
    fn min_and_median() {
        let d = Duration::from_millis;
        assert_eq!(min_median(&[d(9), d(3), d(5)]), Some((d(3), d(5))));
        assert_eq!(min_median(&[d(4), d(2), d(8), d(6)]), Some((d(2), d(5))));
        assert_eq!(min_median(&[]), None);
    }
}
