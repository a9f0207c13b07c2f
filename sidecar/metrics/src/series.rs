use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Dapr's default latency bucket upper bounds in milliseconds (the Configuration's
/// `spec.metric.latencyDistributionBuckets` replaces them).
pub const DEFAULT_BUCKETS_MS: [f64; 34] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0, 16.0, 20.0, 25.0, 30.0, 40.0, 50.0, 65.0, 80.0,
    100.0, 130.0, 160.0, 200.0, 250.0, 300.0, 400.0, 500.0, 650.0, 800.0, 1_000.0, 2_000.0,
    5_000.0, 10_000.0, 20_000.0, 50_000.0, 100_000.0,
];

/// A request counter with a latency histogram over the bounds it was made for.
#[derive(Debug)]
pub struct Series {
    pub(super) count: AtomicU64,
    /// Sum of latencies in nanoseconds.
    pub(super) sum_ns: AtomicU64,
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    pub(super) buckets: Box<[AtomicU64]>,
}

impl Series {
    pub(super) fn new(bounds: usize) -> Self {
        Self {
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            buckets: (0..=bounds).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Counts one call; `bounds` must be the bounds this series was made with.
    pub(super) fn observe(&self, bounds: &[f64], elapsed: Duration) {
        let ms = elapsed.as_secs_f64() * 1000.0;
        let slot = bounds
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(bounds.len())
            .min(self.buckets.len() - 1);
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}
