use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Latency bucket upper bounds in milliseconds, as Dapr's HTTP and gRPC server views use.
pub const BUCKETS_MS: [f64; 22] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0, 16.0, 20.0, 25.0, 30.0, 40.0, 50.0, 65.0, 80.0,
    100.0, 250.0, 500.0, 1000.0, 5000.0,
];

/// A request counter with a latency histogram.
#[derive(Debug, Default)]
pub struct Series {
    pub(super) count: AtomicU64,
    /// Sum of latencies in nanoseconds.
    pub(super) sum_ns: AtomicU64,
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    pub(super) buckets: [AtomicU64; BUCKETS_MS.len() + 1],
}

impl Series {
    pub fn observe(&self, elapsed: Duration) {
        let ms = elapsed.as_secs_f64() * 1000.0;
        let slot = BUCKETS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(BUCKETS_MS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}
