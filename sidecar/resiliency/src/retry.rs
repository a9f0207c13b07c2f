//! Retry policies: constant or exponential backoff, a retry budget, and which failures are
//! worth retrying (`matching.httpStatusCodes` / `gRPCStatusCodes`).

use std::num::ParseIntError;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;

/// How long to wait before each retry.
#[derive(Debug, Clone, PartialEq)]
pub enum Backoff {
    Constant(Duration),
    /// Starts at 500 ms, grows by 1.5× with ±50 % jitter, capped at `max_interval`.
    Exponential {
        max_interval: Duration,
    },
}

/// Status codes given as a list of codes and ranges, e.g. `429,500-599`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusMatcher {
    ranges: Vec<(u32, u32)>,
}

/// Why a list of status codes was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StatusCodeError {
    /// An entry is not a number.
    #[error("invalid status code {code:?}")]
    Invalid {
        code: String,
        #[source]
        source: ParseIntError,
    },
    /// A range is reversed or reaches past the codes of its protocol.
    #[error("status code range {range:?} must lie within {min}-{max}")]
    OutOfRange { range: String, min: u32, max: u32 },
}

impl StatusMatcher {
    /// Reads `raw`, refusing codes outside `min..=max` (100-599 for HTTP, 0-16 for gRPC).
    pub fn parse(raw: &str, min: u32, max: u32) -> Result<Self, StatusCodeError> {
        let mut ranges = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part, part),
            };
            let parse = |s: &str| {
                s.parse::<u32>().map_err(|source| StatusCodeError::Invalid {
                    code: s.to_string(),
                    source,
                })
            };
            let (a, b) = (parse(a)?, parse(b)?);
            if a > b || a < min || b > max {
                return Err(StatusCodeError::OutOfRange {
                    range: part.to_string(),
                    min,
                    max,
                });
            }
            ranges.push((a, b));
        }
        Ok(Self { ranges })
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn matches(&self, code: u32) -> bool {
        self.ranges.iter().any(|(a, b)| (*a..=*b).contains(&code))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetrySettings {
    pub backoff: Backoff,
    /// `None` retries without limit (Dapr's `maxRetries: -1`).
    pub max_retries: Option<u32>,
    pub http_codes: StatusMatcher,
    pub grpc_codes: StatusMatcher,
    /// Retry only failures to reach the target, never answers from it (the built-in
    /// invocation policy: a request the app saw is not sent twice).
    pub transport_only: bool,
}

impl RetrySettings {
    /// Dapr's built-in retries for service invocation: 3 more tries, 1 s apart, only when
    /// the other sidecar could not be reached.
    pub fn builtin_invocation() -> Self {
        Self {
            backoff: Backoff::Constant(Duration::from_secs(1)),
            max_retries: Some(3),
            http_codes: StatusMatcher::default(),
            grpc_codes: StatusMatcher::default(),
            transport_only: true,
        }
    }

    /// The wait before retry number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        match &self.backoff {
            Backoff::Constant(d) => *d,
            Backoff::Exponential { max_interval } => {
                let base = 0.5 * 1.5f64.powi(attempt.saturating_sub(1).min(64) as i32);
                let jitter = 0.5 + jitter_unit();
                Duration::from_secs_f64((base * jitter).min(max_interval.as_secs_f64()))
            }
        }
    }
}

/// A number in [0, 1) for jitter; randomness quality does not matter here.
fn jitter_unit() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut x = u64::from(nanos) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x % 1_000_000) as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lists_and_ranges() {
        let m = StatusMatcher::parse("429, 500-503,418", 100, 599).expect("valid");
        assert!(m.matches(429) && m.matches(500) && m.matches(503) && m.matches(418));
        assert!(!m.matches(504) && !m.matches(200));
        assert!(StatusMatcher::parse("600", 100, 599).is_err());
        assert!(StatusMatcher::parse("503-500", 100, 599).is_err());
        assert!(StatusMatcher::parse("abc", 100, 599).is_err());
        assert!(StatusMatcher::parse("1-4,17", 0, 16).is_err());
    }

    #[test]
    fn backoffs() {
        let c = RetrySettings {
            backoff: Backoff::Constant(Duration::from_millis(200)),
            ..RetrySettings::builtin_invocation()
        };
        assert_eq!(c.delay(1), Duration::from_millis(200));
        assert_eq!(c.delay(7), Duration::from_millis(200));
        let e = RetrySettings {
            backoff: Backoff::Exponential {
                max_interval: Duration::from_secs(2),
            },
            ..RetrySettings::builtin_invocation()
        };
        let d1 = e.delay(1);
        assert!(
            d1 >= Duration::from_millis(250) && d1 <= Duration::from_millis(750),
            "{d1:?}"
        );
        assert!(
            e.delay(30) <= Duration::from_secs(2),
            "capped at maxInterval"
        );
    }
}
