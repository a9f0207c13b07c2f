//! The `Resiliency` resource (`dapr.io/v1alpha1`, typed by the `crds` crate): named policies
//! and the targets that use them turned into [`Policies`], with Dapr's defaults for anything
//! left out.

use std::sync::Arc;
use std::time::Duration;

use crds::ResiliencySpec;
use crds::resiliency::{CircuitBreaker, Retry};

use super::breaker::{Breaker, BreakerSettings};
use super::policy::{Policies, Policy};
use super::retry::{Backoff, RetrySettings, StatusMatcher};
use super::trip::TripExpr;

/// An optional text field of the spec: empty means not set.
fn set(text: &str) -> Option<&str> {
    Some(text).filter(|t| !t.is_empty())
}

/// Resiliency durations read a bare integer as milliseconds, as Dapr's do.
fn duration(raw: &str, what: &str) -> Result<Duration, String> {
    kit::duration::resiliency(raw).map_err(|e| format!("invalid duration {raw:?} for {what}: {e}"))
}

fn retry(name: &str, spec: &Retry) -> Result<RetrySettings, String> {
    let backoff = match spec.policy.as_str() {
        "" | "constant" => Backoff::Constant(match set(&spec.duration) {
            Some(d) => duration(d, &format!("retry {name} duration"))?,
            None => Duration::from_secs(5),
        }),
        "exponential" => Backoff::Exponential {
            max_interval: match set(&spec.max_interval) {
                Some(d) => duration(d, &format!("retry {name} maxInterval"))?,
                None => Duration::from_secs(60),
            },
        },
        other => return Err(format!("retry {name}: unknown policy {other:?}")),
    };
    let matching = spec.matching.clone().unwrap_or_default();
    Ok(RetrySettings {
        backoff,
        max_retries: match spec.max_retries {
            None => None,
            Some(n) if n < 0 => None,
            Some(n) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        },
        http_codes: StatusMatcher::parse(&matching.http_status_codes, 100, 599)
            .map_err(|e| format!("retry {name} httpStatusCodes: {e}"))?,
        grpc_codes: StatusMatcher::parse(&matching.grpc_status_codes, 0, 16)
            .map_err(|e| format!("retry {name} gRPCStatusCodes: {e}"))?,
        transport_only: false,
    })
}

fn breaker(name: &str, spec: &CircuitBreaker) -> Result<BreakerSettings, String> {
    Ok(BreakerSettings {
        // 0 (unset) lets one request through while half-open, as Dapr does.
        max_requests: u32::try_from(spec.max_requests).map_err(|_| {
            format!(
                "circuit breaker {name}: invalid maxRequests {}",
                spec.max_requests
            )
        })?,
        interval: match set(&spec.interval) {
            Some(d) => duration(d, &format!("circuit breaker {name} interval"))?,
            None => Duration::ZERO,
        },
        timeout: match set(&spec.timeout) {
            Some(d) => duration(d, &format!("circuit breaker {name} timeout"))?,
            None => Duration::from_secs(60),
        },
        trip: TripExpr::parse(set(&spec.trip).unwrap_or("consecutiveFailures > 5"))
            .map_err(|e| format!("circuit breaker {name}: {e}"))?,
    })
}

/// Builds the policies of every resource, validating each reference. Each app target gets
/// its own breaker instance.
pub fn parse_resiliency(specs: &[ResiliencySpec]) -> Result<Policies, String> {
    let mut policies = Policies::default();
    for spec in specs {
        let p = &spec.policies;
        for (app, target) in &spec.targets.apps {
            let timeout = match set(&target.timeout) {
                None => None,
                Some(t) => Some(match p.timeouts.get(t) {
                    Some(d) => duration(d, &format!("timeout {t}"))?,
                    // A duration written in place, as Dapr also allows.
                    None => kit::duration::resiliency(t)
                        .map_err(|_| format!("app {app}: unknown timeout policy {t:?}"))?,
                }),
            };
            let retry = match set(&target.retry) {
                None => None,
                Some(r) => Some(retry(
                    r,
                    p.retries
                        .get(r)
                        .ok_or_else(|| format!("app {app}: unknown retry policy {r:?}"))?,
                )?),
            };
            let breaker = match set(&target.circuit_breaker) {
                None => None,
                Some(b) => Some(Arc::new(Breaker::new(breaker(
                    b,
                    p.circuit_breakers
                        .get(b)
                        .ok_or_else(|| format!("app {app}: unknown circuit breaker {b:?}"))?,
                )?))),
            };
            policies.apps.insert(
                app.clone(),
                Arc::new(Policy {
                    timeout,
                    retry,
                    breaker,
                }),
            );
        }
    }
    Ok(policies)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec of a Resiliency document, decoded as the loader decodes it.
    fn spec(yaml: &str) -> ResiliencySpec {
        let spec: serde_json::Value = serde_saphyr::from_str(yaml).expect("yaml");
        let doc = serde_json::json!({"kind": "Resiliency", "spec": spec});
        crds::document::decode::<crds::Resiliency>(doc)
            .expect("spec")
            .spec
            .spec
    }

    #[test]
    fn bare_numbers_are_milliseconds_as_in_dapr() {
        let s = spec(
            "policies:\n  timeouts:\n    quick: \"20\"\n  retries:\n    r:\n      policy: constant\n      duration: \"250\"\n      maxRetries: 1\ntargets:\n  apps:\n    a:\n      timeout: quick\n      retry: r\n    b:\n      timeout: \"40\"\n",
        );
        let p = parse_resiliency(&[s]).expect("valid");
        assert_eq!(p.app("a").timeout, Some(Duration::from_millis(20)));
        assert_eq!(p.app("b").timeout, Some(Duration::from_millis(40)));
    }

    #[test]
    fn builds_policies_from_daprs_example() {
        let s = spec(
            "policies:\n  timeouts:\n    general: 5s\n  retries:\n    important:\n      policy: constant\n      duration: 100ms\n      maxRetries: 3\n      matching:\n        httpStatusCodes: 429,500-599\n    forever:\n      policy: exponential\n      maxInterval: 15s\n      maxRetries: -1\n  circuitBreakers:\n    simple:\n      maxRequests: 1\n      timeout: 30s\n      trip: consecutiveFailures >= 5\ntargets:\n  apps:\n    appB:\n      timeout: general\n      retry: important\n      circuitBreaker: simple\n    appC:\n      timeout: 250ms\n      retry: forever\n",
        );
        let p = parse_resiliency(&[s]).expect("valid");
        let b = p.app("appB");
        assert_eq!(b.timeout, Some(Duration::from_secs(5)));
        let r = b.retry.clone().expect("retry");
        assert_eq!(r.max_retries, Some(3));
        assert!(r.http_codes.matches(503) && !r.http_codes.matches(404));
        assert!(b.breaker.is_some());
        let c = p.app("appC");
        assert_eq!(c.timeout, Some(Duration::from_millis(250)));
        assert_eq!(c.retry.as_ref().map(|r| r.max_retries), Some(None));
        assert!(
            p.app("other")
                .retry
                .as_ref()
                .is_some_and(|r| r.transport_only),
            "built-in retries elsewhere"
        );
    }

    #[test]
    fn refuses_dangling_references_and_bad_values() {
        for bad in [
            "targets:\n  apps:\n    a:\n      retry: nope\n",
            "targets:\n  apps:\n    a:\n      timeout: nope\n",
            "targets:\n  apps:\n    a:\n      circuitBreaker: nope\n",
            "policies:\n  retries:\n    r:\n      policy: sometimes\ntargets:\n  apps:\n    a:\n      retry: r\n",
            "policies:\n  circuitBreakers:\n    c:\n      trip: failures > 1\ntargets:\n  apps:\n    a:\n      circuitBreaker: c\n",
            "policies:\n  retries:\n    r:\n      matching:\n        httpStatusCodes: 999\ntargets:\n  apps:\n    a:\n      retry: r\n",
            "policies:\n  circuitBreakers:\n    c:\n      maxRequests: -1\ntargets:\n  apps:\n    a:\n      circuitBreaker: c\n",
        ] {
            assert!(parse_resiliency(&[spec(bad)]).is_err(), "{bad}");
        }
    }
}
