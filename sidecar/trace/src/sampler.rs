//! Which traces are sampled: Dapr's sampler is OpenTelemetry's parent-based ratio sampler,
//! so a trace someone upstream sampled stays sampled (and one they dropped stays dropped)
//! whatever this sidecar's rate, and a new trace is sampled by its id, the same way in
//! every sidecar and SDK.

use crate::SpanContext;

/// The rate Dapr uses when `samplingRate` is missing or not a number: one in ten thousand.
pub const DEFAULT_RATE: f64 = 1e-4;

/// `spec.tracing.samplingRate` as Dapr reads it: a float as Go parses one, else
/// [`DEFAULT_RATE`].
pub fn parse_rate(rate: &str) -> f64 {
    match rate.parse::<f64>() {
        Ok(r) if !r.is_nan() => r,
        _ => DEFAULT_RATE,
    }
}

/// A parent-based sampler around a trace-id ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampler {
    /// Sample a new trace when the top 63 bits of its id's low half fall below this.
    bound: u64,
    always: bool,
}

impl Sampler {
    /// Samples the given fraction of new traces (at least 1: all, at most 0: none).
    pub fn ratio(rate: f64) -> Self {
        if rate >= 1.0 {
            return Self {
                bound: u64::MAX,
                always: true,
            };
        }
        let rate = rate.max(0.0);
        Self {
            // As OpenTelemetry computes it, so a trace id gets the same decision
            // everywhere.
            bound: (rate * (1u64 << 63) as f64) as u64,
            always: false,
        }
    }

    /// Whether a span with this parent (if any) in this trace is sampled.
    pub fn sample(&self, parent: Option<&SpanContext>, trace_id: &[u8; 16]) -> bool {
        if let Some(parent) = parent.filter(|p| p.is_valid()) {
            return parent.is_sampled();
        }
        if self.always {
            return true;
        }
        let mut low = [0u8; 8];
        low.copy_from_slice(&trace_id[8..]);
        (u64::from_be_bytes(low) >> 1) < self.bound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(low: u64) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[0] = 1;
        id[8..].copy_from_slice(&low.to_be_bytes());
        id
    }

    #[test]
    fn rates_read_as_go_reads_them() {
        assert_eq!(parse_rate("1"), 1.0);
        assert_eq!(parse_rate("0.5"), 0.5);
        assert_eq!(parse_rate("1e-2"), 0.01);
        assert_eq!(parse_rate("0"), 0.0);
        assert_eq!(parse_rate(""), DEFAULT_RATE);
        assert_eq!(parse_rate("all"), DEFAULT_RATE);
    }

    #[test]
    fn new_traces_are_sampled_by_the_low_half_of_their_id() {
        let half = Sampler::ratio(0.5);
        assert!(half.sample(None, &id(0)));
        assert!(half.sample(None, &id((1u64 << 62) * 2 - 2)));
        assert!(!half.sample(None, &id(u64::MAX)));
        assert!(Sampler::ratio(1.0).sample(None, &id(u64::MAX)));
        assert!(Sampler::ratio(7.0).sample(None, &id(u64::MAX)));
        assert!(!Sampler::ratio(0.0).sample(None, &id(0)));
        assert!(!Sampler::ratio(-1.0).sample(None, &id(0)));
    }

    #[test]
    fn a_parent_decides_for_its_children() {
        let mut parent = SpanContext {
            trace_id: id(u64::MAX),
            span_id: [1; 8],
            flags: 1,
            trace_state: None,
        };
        assert!(Sampler::ratio(0.0).sample(Some(&parent), &parent.trace_id));
        parent.flags = 0;
        assert!(!Sampler::ratio(1.0).sample(Some(&parent), &parent.trace_id));
        // An invalid parent is no parent.
        parent.span_id = [0; 8];
        assert!(Sampler::ratio(1.0).sample(Some(&parent), &parent.trace_id));
    }
}
