//! Which failures are worth trying again. Dapr marks the others `backoff.Permanent` so its
//! retries stop at once (an ETag conflict stays a conflict however often it is sent); this
//! trait is how an error type tells the policy runner the same thing.

use components_core::ComponentError;
use components_core::state::StateError;

use super::policy::{Outcome, PolicyError};

/// Whether the same call could succeed if made again.
pub trait Transience {
    /// `false` for a failure that repeats on every try: retrying it only adds load and
    /// delays the answer.
    fn is_transient(&self) -> bool;
}

impl Transience for ComponentError {
    fn is_transient(&self) -> bool {
        ComponentError::is_transient(self)
    }
}

impl Transience for StateError {
    fn is_transient(&self) -> bool {
        StateError::is_transient(self)
    }
}

/// An open breaker is permanent for the call that met it, as Dapr's `IsErrorPermanent`
/// says, so an outer retry does not spin on it; a timeout may go better next time.
impl Transience for PolicyError {
    fn is_transient(&self) -> bool {
        match self {
            PolicyError::BreakerOpen => false,
            PolicyError::Timeout(_) => true,
        }
    }
}

impl<E: Transience + ?Sized> Transience for &E {
    fn is_transient(&self) -> bool {
        (**self).is_transient()
    }
}

impl Outcome {
    /// How a call that fails with an error (rather than answering with a status) counts:
    /// a transient error is a [`Outcome::Failure`], retried per the policy; any other is
    /// [`Outcome::Permanent`]. Pass it as the `classify` of [`Policy::run`] for calls to
    /// components: `policy.run(|| store.get(&req), Outcome::of)`.
    ///
    /// [`Policy::run`]: crate::Policy::run
    pub fn of<T, E: Transience>(result: &Result<T, E>) -> Self {
        match result {
            Ok(_) => Outcome::Success,
            Err(e) if e.is_transient() => Outcome::Failure,
            Err(_) => Outcome::Permanent,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::policy::tests::retry;
    use crate::{Breaker, BreakerSettings, Policies, Policy, TripExpr};

    fn breaker(trip: &str) -> Arc<Breaker> {
        Arc::new(Breaker::new(BreakerSettings {
            max_requests: 1,
            interval: Duration::ZERO,
            timeout: Duration::from_secs(60),
            trip: TripExpr::parse(trip).expect("trip"),
        }))
    }

    /// Runs `policy` over an operation that fails with `errors[i]` on try `i` and succeeds
    /// after them; returns the result and how many tries were made.
    async fn run(
        policy: &Policy,
        errors: &[fn() -> StateError],
    ) -> (Result<Result<u8, StateError>, PolicyError>, u32) {
        let calls = AtomicU32::new(0);
        let r = policy
            .run(
                || async {
                    let i = calls.fetch_add(1, Ordering::SeqCst) as usize;
                    match errors.get(i) {
                        Some(e) => Err(e()),
                        None => Ok(7),
                    }
                },
                Outcome::of,
            )
            .await;
        (r, calls.load(Ordering::SeqCst))
    }

    fn mismatch() -> StateError {
        StateError::EtagMismatch("stored etag differs".into())
    }

    fn down() -> StateError {
        StateError::backend("connection refused")
    }

    #[test]
    fn outcomes_of_errors() {
        assert_eq!(Outcome::of(&Ok::<(), StateError>(())), Outcome::Success);
        assert_eq!(Outcome::of(&Err::<(), _>(down())), Outcome::Failure);
        assert_eq!(Outcome::of(&Err::<(), _>(mismatch())), Outcome::Permanent);
        let e = StateError::EtagInvalid("not a number".into());
        assert_eq!(Outcome::of(&Err::<(), _>(&e)), Outcome::Permanent);
        let connect = ComponentError::Connect("redis: refused".into());
        assert_eq!(Outcome::of(&Err::<(), _>(connect)), Outcome::Failure);
        let metadata = ComponentError::Metadata("redisHost is required".into());
        assert_eq!(Outcome::of(&Err::<(), _>(metadata)), Outcome::Permanent);
        assert!(!PolicyError::BreakerOpen.is_transient());
        assert!(PolicyError::Timeout(Duration::from_secs(1)).is_transient());
    }

    #[tokio::test]
    async fn a_permanent_error_is_tried_once() {
        let p = Policy {
            retry: Some(retry(5)),
            ..Policy::default()
        };
        let (r, calls) = run(&p, &[mismatch]).await;
        assert!(matches!(r, Ok(Err(StateError::EtagMismatch(_)))), "{r:?}");
        assert_eq!(calls, 1);
        let (r, calls) = run(&p, &[down, down, mismatch, down]).await;
        assert!(matches!(r, Ok(Err(StateError::EtagMismatch(_)))), "{r:?}");
        assert_eq!(calls, 3, "retries stop at the first permanent error");
    }

    #[tokio::test]
    async fn a_transient_error_is_retried_per_policy() {
        let p = Policy {
            retry: Some(retry(3)),
            ..Policy::default()
        };
        let (r, calls) = run(&p, &[down, down]).await;
        assert!(matches!(r, Ok(Ok(7))), "{r:?}");
        assert_eq!(calls, 3, "recovered on the third try");
        let (r, calls) = run(&p, &[down as fn() -> StateError; 10]).await;
        assert!(matches!(r, Ok(Err(StateError::Backend(_)))), "{r:?}");
        assert_eq!(calls, 4, "one try and three retries, then the last error");
        let (_, calls) = run(&Policy::default(), &[down]).await;
        assert_eq!(calls, 1, "no retry policy, no retries");
        let (_, calls) = run(&Policies::default().app("x"), &[down]).await;
        assert_eq!(
            calls, 1,
            "the built-in invocation retries are for transport only"
        );
    }

    #[tokio::test]
    async fn a_permanent_error_counts_against_the_breaker_as_in_dapr() {
        let p = Policy {
            retry: Some(retry(5)),
            breaker: Some(breaker("consecutiveFailures >= 2")),
            ..Policy::default()
        };
        let (_, calls) = run(&p, &[mismatch]).await;
        assert_eq!(calls, 1);
        let (_, calls) = run(&p, &[mismatch]).await;
        assert_eq!(calls, 1, "still not retried");
        let (r, calls) = run(&p, &[]).await;
        assert_eq!(
            (r.map(|r| r.ok()), calls),
            (Err(PolicyError::BreakerOpen), 0),
            "two consecutive failures, permanent or not, open the breaker"
        );
    }

    #[tokio::test]
    async fn an_opening_breaker_ends_the_retries() {
        let p = Policy {
            retry: Some(retry(10)),
            breaker: Some(breaker("consecutiveFailures >= 3")),
            ..Policy::default()
        };
        let (r, calls) = run(&p, &[down as fn() -> StateError; 10]).await;
        assert_eq!(r.map(|r| r.ok()), Err(PolicyError::BreakerOpen));
        assert_eq!(calls, 3, "the breaker opened on the third failure");
    }
}
