//! Resiliency: the policies of Dapr's `Resiliency` resources (timeouts, retries, circuit
//! breakers) and the one mechanism that applies them to any call, so app invocation now
//! and components and actors later behave the same way.

mod breaker;
mod policy;
mod retry;
mod spec;
mod trip;

pub use breaker::{Breaker, BreakerSettings};
pub use policy::{Outcome, Policies, Policy, PolicyError};
pub use retry::{Backoff, RetrySettings, StatusMatcher};
pub use spec::parse_resiliency;
pub use trip::TripExpr;
