//! Applying a target's policies to a call: breaker check, per-attempt timeout, retries.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use super::breaker::Breaker;
use super::retry::RetrySettings;

/// How one attempt ended, as the policies see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The target answered with this HTTP status and it counts as a failure.
    Http(u16),
    /// The target answered with this gRPC code.
    Grpc(i32),
    /// The target could not be reached.
    Transport,
    /// The attempt ran out of time (it may have reached the target).
    Timeout,
    /// The target failed with an error that may pass (a component's backend is down):
    /// retried whenever a retry policy applies, as its status-code lists do not.
    Failure,
    /// The target failed in a way no retry can change (an ETag conflict, a bad request):
    /// never retried, and, as in Dapr, a failure for the circuit breaker all the same.
    Permanent,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PolicyError {
    #[error("circuit breaker is open")]
    BreakerOpen,
    #[error("timeout waiting for the target after {0:?}")]
    Timeout(Duration),
}

/// The policies for one target.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub timeout: Option<Duration>,
    pub retry: Option<RetrySettings>,
    pub breaker: Option<Arc<Breaker>>,
}

/// Policies by target, built from every loaded Resiliency resource. Shared, not copied:
/// every call to a target uses the same policy (and the same circuit breaker).
#[derive(Debug)]
pub struct Policies {
    pub apps: HashMap<String, Arc<Policy>>,
    /// Component name → policy for its deliveries to the app (pub/sub, input bindings).
    pub component_inbound: HashMap<String, Arc<Policy>>,
    /// Component name → policy for calls to it (publishing, output bindings).
    pub component_outbound: HashMap<String, Arc<Policy>>,
    /// Dapr's built-in retries, for apps no Resiliency targets.
    builtin: Arc<Policy>,
}

impl Default for Policies {
    fn default() -> Self {
        let builtin = Policy {
            retry: Some(RetrySettings::builtin_invocation()),
            ..Policy::default()
        };
        Self {
            apps: HashMap::new(),
            component_inbound: HashMap::new(),
            component_outbound: HashMap::new(),
            builtin: Arc::new(builtin),
        }
    }
}

impl Policies {
    /// The policy for calls to `app_id`: the configured one, or, when no Resiliency
    /// targets the app, Dapr's built-in retries.
    pub fn app(&self, app_id: &str) -> Arc<Policy> {
        self.apps.get(app_id).unwrap_or(&self.builtin).clone()
    }
}

impl Policies {
    /// The policy for a component's deliveries to the app, if a Resiliency sets one
    /// (components have no built-in retries).
    pub fn component_inbound(&self, name: &str) -> Option<Arc<Policy>> {
        self.component_inbound.get(name).cloned()
    }

    /// The policy for calls to a component, if a Resiliency sets one.
    pub fn component_outbound(&self, name: &str) -> Option<Arc<Policy>> {
        self.component_outbound.get(name).cloned()
    }
}

impl Policy {
    fn should_retry(&self, retries: bool, outcome: Outcome, attempt: u32) -> Option<Duration> {
        let retry = self.retry.as_ref().filter(|_| retries)?;
        if retry.max_retries.is_some_and(|max| attempt > max) {
            return None;
        }
        let wanted = match outcome {
            Outcome::Success | Outcome::Permanent => false,
            Outcome::Transport => true,
            _ if retry.transport_only => false,
            Outcome::Timeout | Outcome::Failure => true,
            Outcome::Http(code) => {
                retry.http_codes.is_empty() || retry.http_codes.matches(u32::from(code))
            }
            Outcome::Grpc(code) => {
                retry.grpc_codes.is_empty()
                    || u32::try_from(code).is_ok_and(|c| retry.grpc_codes.matches(c))
            }
        };
        wanted.then(|| retry.delay(attempt))
    }

    /// Runs `op` under the policy. `classify` says how an attempt's result counts
    /// ([`Outcome::of`] for errors that know their [`Transience`](crate::Transience)); the
    /// last result is returned as it is when retries run out or a failure is permanent, so
    /// an app's own error reaches the caller unchanged.
    pub async fn run<T, E, F, Fut, C>(
        &self,
        op: F,
        classify: C,
    ) -> Result<Result<T, E>, PolicyError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Fn(&Result<T, E>) -> Outcome,
    {
        self.execute(true, op, classify).await
    }

    /// Like [`Policy::run`] for a call that cannot be repeated (a streamed body): timeout
    /// and circuit breaker apply, retries do not.
    pub async fn run_once<T, E, F, Fut, C>(
        &self,
        op: F,
        classify: C,
    ) -> Result<Result<T, E>, PolicyError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Fn(&Result<T, E>) -> Outcome,
    {
        self.execute(false, op, classify).await
    }

    async fn execute<T, E, F, Fut, C>(
        &self,
        retries: bool,
        mut op: F,
        classify: C,
    ) -> Result<Result<T, E>, PolicyError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Fn(&Result<T, E>) -> Outcome,
    {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let ticket = match &self.breaker {
                Some(b) => Some(b.allow().ok_or(PolicyError::BreakerOpen)?),
                None => None,
            };
            let result = match self.timeout {
                Some(t) => tokio::time::timeout(t, op())
                    .await
                    .map_err(|_| PolicyError::Timeout(t)),
                None => Ok(op().await),
            };
            let outcome = match &result {
                Ok(r) => classify(r),
                Err(_) => Outcome::Timeout,
            };
            // Every failure counts, a permanent one too: Dapr's breaker sees any error.
            if let (Some(b), Some(t)) = (&self.breaker, ticket) {
                b.record(t, outcome == Outcome::Success);
            }
            match self.should_retry(retries, outcome, attempt) {
                Some(delay) => {
                    tracing::debug!(attempt, ?outcome, "retrying after {delay:?}");
                    tokio::time::sleep(delay).await;
                }
                None => return result,
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{Backoff, BreakerSettings, StatusMatcher, TripExpr};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A retry of `max` tries with a 1 ms constant backoff; other modules' tests use it too.
    pub(crate) fn retry(max: u32) -> RetrySettings {
        RetrySettings {
            backoff: Backoff::Constant(Duration::from_millis(1)),
            max_retries: Some(max),
            http_codes: StatusMatcher::default(),
            grpc_codes: StatusMatcher::default(),
            transport_only: false,
        }
    }

    fn classify(r: &Result<u16, ()>) -> Outcome {
        match r {
            Ok(s) if *s >= 500 => Outcome::Http(*s),
            Ok(_) => Outcome::Success,
            Err(()) => Outcome::Transport,
        }
    }

    #[tokio::test]
    async fn retries_until_success_within_the_budget() {
        let calls = AtomicU32::new(0);
        let p = Policy {
            retry: Some(retry(3)),
            ..Policy::default()
        };
        let r = p
            .run(
                || async {
                    if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                        Ok(500)
                    } else {
                        Ok(200)
                    }
                },
                classify,
            )
            .await;
        assert_eq!(r, Ok(Ok(200)));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn returns_the_last_answer_when_retries_run_out() {
        let calls = AtomicU32::new(0);
        let p = Policy {
            retry: Some(retry(2)),
            ..Policy::default()
        };
        let r = p
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok(503)
                },
                classify,
            )
            .await;
        assert_eq!(r, Ok(Ok(503)));
        assert_eq!(calls.load(Ordering::SeqCst), 3, "one try and two retries");
    }

    #[tokio::test]
    async fn matching_limits_what_is_retried() {
        let calls = AtomicU32::new(0);
        let mut settings = retry(5);
        settings.http_codes = StatusMatcher::parse("503", 100, 599).expect("valid");
        let p = Policy {
            retry: Some(settings),
            ..Policy::default()
        };
        let r = p
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok(500)
                },
                classify,
            )
            .await;
        assert_eq!(r, Ok(Ok(500)));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "500 is not in the list");
    }

    #[tokio::test]
    async fn builtin_retries_never_resend_what_the_app_answered() {
        let calls = AtomicU32::new(0);
        let p = Policies::default().app("x");
        let r = p
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok(500)
                },
                classify,
            )
            .await;
        assert_eq!(r, Ok(Ok(500)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn timeouts_and_open_breakers_fail_fast() {
        let p = Policy {
            timeout: Some(Duration::from_millis(20)),
            ..Policy::default()
        };
        let r = p
            .run(
                || async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok::<u16, ()>(200)
                },
                classify,
            )
            .await;
        assert_eq!(r, Err(PolicyError::Timeout(Duration::from_millis(20))));
        let breaker = Arc::new(crate::Breaker::new(BreakerSettings {
            max_requests: 1,
            interval: Duration::ZERO,
            timeout: Duration::from_secs(60),
            trip: TripExpr::parse("consecutiveFailures >= 1").expect("trip"),
        }));
        let p = Policy {
            breaker: Some(breaker),
            ..Policy::default()
        };
        assert_eq!(p.run(|| async { Ok(500) }, classify).await, Ok(Ok(500)));
        assert_eq!(
            p.run(|| async { Ok(200) }, classify).await,
            Err(PolicyError::BreakerOpen)
        );
    }
}
