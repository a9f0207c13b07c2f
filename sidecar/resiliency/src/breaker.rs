//! Circuit breakers: closed (calls flow, counters grow, `trip` decides when to open), open
//! (calls fail fast for `timeout`), half-open (up to `maxRequests` trial calls; success
//! closes, failure opens again).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::trip::{Counts, TripExpr};

#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSettings {
    pub max_requests: u32,
    /// How often a closed breaker clears its counters; zero never does.
    pub interval: Duration,
    /// How long an open breaker stays open.
    pub timeout: Duration,
    pub trip: TripExpr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    state: State,
    counts: Counts,
    generation: u64,
    window_start: Instant,
}

#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    inner: Mutex<Inner>,
}

/// A permission to make one call; report its result with [`Breaker::record`]. A ticket
/// dropped without a result (the caller went away mid-call) counts as a failure, so a
/// half-open breaker can never wait forever for a trial that will not report.
#[derive(Debug)]
pub struct Ticket {
    generation: u64,
    breaker: std::sync::Weak<Breaker>,
    done: bool,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done
            && let Some(b) = self.breaker.upgrade()
        {
            b.settle(self.generation, false);
        }
    }
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Self {
        let inner = Inner {
            state: State::Closed,
            counts: Counts::default(),
            generation: 0,
            window_start: Instant::now(),
        };
        Self {
            settings,
            inner: Mutex::new(inner),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reset(inner: &mut Inner, state: State) {
        inner.state = state;
        inner.counts = Counts::default();
        inner.generation += 1;
        inner.window_start = Instant::now();
    }

    /// `None` while the breaker is open (or half-open with its trial calls taken).
    pub fn allow(self: &std::sync::Arc<Self>) -> Option<Ticket> {
        let mut inner = self.lock();
        let now = Instant::now();
        match inner.state {
            State::Closed => {
                if !self.settings.interval.is_zero()
                    && now.duration_since(inner.window_start) >= self.settings.interval
                {
                    Self::reset(&mut inner, State::Closed);
                }
            }
            State::Open { until } if now >= until => Self::reset(&mut inner, State::HalfOpen),
            State::Open { .. } => return None,
            State::HalfOpen => {
                if inner.counts.requests >= u64::from(self.settings.max_requests.max(1)) {
                    return None;
                }
            }
        }
        inner.counts.requests += 1;
        Some(Ticket {
            generation: inner.generation,
            breaker: std::sync::Arc::downgrade(self),
            done: false,
        })
    }

    pub fn record(&self, mut ticket: Ticket, success: bool) {
        ticket.done = true;
        self.settle(ticket.generation, success);
    }

    fn settle(&self, generation: u64, success: bool) {
        let mut inner = self.lock();
        if generation != inner.generation {
            return;
        }
        let c = &mut inner.counts;
        if success {
            c.total_successes += 1;
            c.consecutive_successes += 1;
            c.consecutive_failures = 0;
        } else {
            c.total_failures += 1;
            c.consecutive_failures += 1;
            c.consecutive_successes = 0;
        }
        match inner.state {
            State::Closed if !success && self.settings.trip.eval(&inner.counts) => {
                tracing::warn!("circuit breaker opened");
                Self::reset(
                    &mut inner,
                    State::Open {
                        until: Instant::now() + self.settings.timeout,
                    },
                );
            }
            State::HalfOpen if !success => {
                Self::reset(
                    &mut inner,
                    State::Open {
                        until: Instant::now() + self.settings.timeout,
                    },
                );
            }
            State::HalfOpen
                if inner.counts.consecutive_successes
                    >= u64::from(self.settings.max_requests.max(1)) =>
            {
                tracing::info!("circuit breaker closed");
                Self::reset(&mut inner, State::Closed);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(timeout_ms: u64) -> std::sync::Arc<Breaker> {
        std::sync::Arc::new(Breaker::new(BreakerSettings {
            max_requests: 1,
            interval: Duration::ZERO,
            timeout: Duration::from_millis(timeout_ms),
            trip: TripExpr::parse("consecutiveFailures >= 2").expect("trip"),
        }))
    }

    #[test]
    fn opens_after_the_trip_and_recovers_through_half_open() {
        let b = breaker(100);
        let t = b.allow().expect("closed");
        b.record(t, false);
        let t = b.allow().expect("still closed after one failure");
        b.record(t, false);
        assert!(b.allow().is_none(), "open after two consecutive failures");
        std::thread::sleep(Duration::from_millis(120));
        let trial = b.allow().expect("half-open lets one trial through");
        assert!(
            b.allow().is_none(),
            "only maxRequests trials while half-open"
        );
        b.record(trial, true);
        assert!(b.allow().is_some(), "closed again after a successful trial");
    }

    #[test]
    fn a_failed_trial_reopens() {
        let b = breaker(50);
        for _ in 0..2 {
            let t = b.allow().expect("closed");
            b.record(t, false);
        }
        std::thread::sleep(Duration::from_millis(60));
        let trial = b.allow().expect("half-open");
        b.record(trial, false);
        assert!(b.allow().is_none(), "open again");
    }

    #[test]
    fn an_abandoned_trial_does_not_wedge_the_breaker() {
        let b = breaker(30);
        for _ in 0..2 {
            let t = b.allow().expect("closed");
            b.record(t, false);
        }
        std::thread::sleep(Duration::from_millis(40));
        let trial = b.allow().expect("half-open");
        drop(trial);
        assert!(
            b.allow().is_none(),
            "the abandoned trial counted as a failure: open again"
        );
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow().is_some(), "and half-open again after the timeout");
    }

    #[test]
    fn successes_reset_consecutive_failures() {
        let b = breaker(1000);
        for ok in [false, true, false, true, false] {
            let t = b.allow().expect("never trips");
            b.record(t, ok);
        }
        assert!(b.allow().is_some());
    }
}
