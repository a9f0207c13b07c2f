//! Resiliency: the policies of Dapr's `Resiliency` resources (timeouts, retries, circuit
//! breakers) and the one mechanism that applies them to any call, so app invocation now
//! and components and actors later behave the same way.

mod breaker;
mod policy;
mod retry;
mod spec;
mod transience;
mod trip;

pub use breaker::{Breaker, BreakerSettings};
pub use policy::{Outcome, Policies, Policy, PolicyError};
pub use retry::{Backoff, RetrySettings, StatusCodeError, StatusMatcher};
pub use spec::{ResiliencyError, parse_resiliency};
pub use transience::Transience;
pub use trip::{TripError, TripExpr};
