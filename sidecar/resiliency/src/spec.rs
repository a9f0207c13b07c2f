//! The `Resiliency` resource (`dapr.io/v1alpha1`, typed by the `crds` crate): named policies
//! and the targets that use them turned into [`Policies`], with Dapr's defaults for anything
//! left out.

use std::sync::Arc;
use std::time::Duration;

use crds::ResiliencySpec;
use crds::resiliency::{CircuitBreaker, Retry};
use kit::duration::DurationError;
use thiserror::Error;

use super::breaker::{Breaker, BreakerSettings};
use super::policy::{Policies, Policy};
use super::retry::{Backoff, RetrySettings, StatusCodeError, StatusMatcher};
use super::trip::{TripError, TripExpr};

/// Why a Resiliency resource was refused; each names the policy or target at fault.
#[derive(Debug, Error)]
pub enum ResiliencyError {
    /// A duration field does not parse.
    #[error("invalid duration {raw:?} for {what}: {source}")]
    Duration {
        raw: String,
        /// The field, e.g. `retry r duration`.
        what: String,
        #[source]
        source: DurationError,
    },
    /// A retry's `policy` is neither `constant` nor `exponential`.
    #[error("retry {retry}: unknown policy {policy:?}")]
    UnknownBackoff { retry: String, policy: String },
    /// A retry's `matching` lists a code that is not one.
    #[error("retry {retry} {field}: {source}")]
    StatusCodes {
        retry: String,
        /// `httpStatusCodes` or `gRPCStatusCodes`.
        field: &'static str,
        #[source]
        source: StatusCodeError,
    },
    /// A circuit breaker's `maxRequests` is negative or too large.
    #[error("circuit breaker {breaker}: invalid maxRequests {value}")]
    MaxRequests { breaker: String, value: i64 },
    /// A circuit breaker's `trip` expression was refused.
    #[error("circuit breaker {breaker}: {source}")]
    Trip {
        breaker: String,
        #[source]
        source: TripError,
    },
    /// A target's timeout is neither a timeout policy's name nor a duration.
    #[error("app {app}: unknown timeout policy {name:?}")]
    UnknownTimeout {
        app: String,
        name: String,
        /// Why the name is not a duration either.
        #[source]
        source: DurationError,
    },
    /// A target names a retry policy no resource defines.
    #[error("app {app}: unknown retry policy {name:?}")]
    UnknownRetry { app: String, name: String },
    /// A target names a circuit breaker no resource defines.
    #[error("app {app}: unknown circuit breaker {name:?}")]
    UnknownBreaker { app: String, name: String },
}

/// An optional text field of the spec: empty means not set.
fn set(text: &str) -> Option<&str> {
    Some(text).filter(|t| !t.is_empty())
}

/// Resiliency durations read a bare integer as milliseconds, as Dapr's do.
fn duration(raw: &str, what: impl FnOnce() -> String) -> Result<Duration, ResiliencyError> {
    kit::duration::resiliency(raw).map_err(|source| ResiliencyError::Duration {
        raw: raw.to_string(),
        what: what(),
        source,
    })
}

fn retry(name: &str, spec: &Retry) -> Result<RetrySettings, ResiliencyError> {
    let backoff = match spec.policy.as_str() {
        "" | "constant" => Backoff::Constant(match set(&spec.duration) {
            Some(d) => duration(d, || format!("retry {name} duration"))?,
            None => Duration::from_secs(5),
        }),
        "exponential" => Backoff::Exponential {
            max_interval: match set(&spec.max_interval) {
                Some(d) => duration(d, || format!("retry {name} maxInterval"))?,
                None => Duration::from_secs(60),
            },
        },
        other => {
            return Err(ResiliencyError::UnknownBackoff {
                retry: name.to_string(),
                policy: other.to_string(),
            });
        }
    };
    let matching = spec.matching.clone().unwrap_or_default();
    let codes = |field: &'static str, raw: &str, min, max| {
        StatusMatcher::parse(raw, min, max).map_err(|source| ResiliencyError::StatusCodes {
            retry: name.to_string(),
            field,
            source,
        })
    };
    Ok(RetrySettings {
        backoff,
        max_retries: match spec.max_retries {
            None => None,
            Some(n) if n < 0 => None,
            Some(n) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        },
        http_codes: codes("httpStatusCodes", &matching.http_status_codes, 100, 599)?,
        grpc_codes: codes("gRPCStatusCodes", &matching.grpc_status_codes, 0, 16)?,
        transport_only: false,
    })
}

fn breaker(name: &str, spec: &CircuitBreaker) -> Result<BreakerSettings, ResiliencyError> {
    Ok(BreakerSettings {
        // 0 (unset) lets one request through while half-open, as Dapr does.
        max_requests: u32::try_from(spec.max_requests).map_err(|_| {
            ResiliencyError::MaxRequests {
                breaker: name.to_string(),
                value: spec.max_requests,
            }
        })?,
        interval: match set(&spec.interval) {
            Some(d) => duration(d, || format!("circuit breaker {name} interval"))?,
            None => Duration::ZERO,
        },
        timeout: match set(&spec.timeout) {
            Some(d) => duration(d, || format!("circuit breaker {name} timeout"))?,
            None => Duration::from_secs(60),
        },
        trip: TripExpr::parse(set(&spec.trip).unwrap_or("consecutiveFailures > 5")).map_err(
            |source| ResiliencyError::Trip {
                breaker: name.to_string(),
                source,
            },
        )?,
    })
}

/// One target's policy from the names it gives (timeout, retry, circuit breaker); `app`
/// names the target in errors.
fn target_policy(
    p: &crds::resiliency::Policies,
    (timeout, retry_name, breaker_name): (&String, &String, &String),
    app: &str,
) -> Result<Policy, ResiliencyError> {
    let timeout = match set(timeout) {
        None => None,
        Some(t) => Some(match p.timeouts.get(t) {
            Some(d) => duration(d, || format!("timeout {t}"))?,
            // A duration written in place, as Dapr also allows.
            None => {
                kit::duration::resiliency(t).map_err(|source| ResiliencyError::UnknownTimeout {
                    app: app.to_string(),
                    name: t.to_string(),
                    source,
                })?
            }
        }),
    };
    let retry = match set(retry_name) {
        None => None,
        Some(r) => Some(retry(
            r,
            p.retries
                .get(r)
                .ok_or_else(|| ResiliencyError::UnknownRetry {
                    app: app.to_string(),
                    name: r.to_string(),
                })?,
        )?),
    };
    let breaker = match set(breaker_name) {
        None => None,
        Some(b) => Some(Arc::new(Breaker::new(breaker(
            b,
            p.circuit_breakers
                .get(b)
                .ok_or_else(|| ResiliencyError::UnknownBreaker {
                    app: app.to_string(),
                    name: b.to_string(),
                })?,
        )?))),
    };
    Ok(Policy {
        timeout,
        retry,
        breaker,
    })
}

/// Builds the policies of every resource, validating each reference. Each app target gets
/// its own breaker instance.
pub fn parse_resiliency(specs: &[ResiliencySpec]) -> Result<Policies, ResiliencyError> {
    let mut policies = Policies::default();
    for spec in specs {
        let p = &spec.policies;
        // Every policy is checked, not only those a target uses, as Dapr decodes them all.
        for (name, d) in &p.timeouts {
            duration(d, || format!("timeout {name}"))?;
        }
        for (name, r) in &p.retries {
            retry(name, r)?;
        }
        for (name, b) in &p.circuit_breakers {
            breaker(name, b)?;
        }
        for (app, target) in &spec.targets.apps {
            let names = (&target.timeout, &target.retry, &target.circuit_breaker);
            policies
                .apps
                .insert(app.clone(), Arc::new(target_policy(p, names, app)?));
        }
        for (component, target) in &spec.targets.components {
            let label = format!("component {component}");
            let i = &target.inbound;
            if i != &Default::default() {
                let names = (&i.timeout, &i.retry, &i.circuit_breaker);
                policies.component_inbound.insert(
                    component.clone(),
                    Arc::new(target_policy(p, names, &format!("{label} inbound"))?),
                );
            }
            let o = &target.outbound;
            if o != &Default::default() {
                let names = (&o.timeout, &o.retry, &o.circuit_breaker);
                policies.component_outbound.insert(
                    component.clone(),
                    Arc::new(target_policy(p, names, &format!("{label} outbound"))?),
                );
            }
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

    #[test]
    fn errors_name_the_policy_and_keep_their_cause() {
        let err = |yaml: &str| parse_resiliency(&[spec(yaml)]).expect_err(yaml);
        let e = err(
            "policies:\n  retries:\n    r:\n      duration: soon\ntargets:\n  apps:\n    a:\n      retry: r\n",
        );
        assert_eq!(
            e.to_string(),
            "invalid duration \"soon\" for retry r duration: time: invalid duration \"soon\""
        );
        assert!(std::error::Error::source(&e).is_some());
        let e = err(
            "policies:\n  retries:\n    r:\n      matching:\n        gRPCStatusCodes: 1-17\ntargets:\n  apps:\n    a:\n      retry: r\n",
        );
        assert_eq!(
            e.to_string(),
            "retry r gRPCStatusCodes: status code range \"1-17\" must lie within 0-16"
        );
        let e = err("targets:\n  apps:\n    a:\n      timeout: nope\n");
        assert_eq!(e.to_string(), "app a: unknown timeout policy \"nope\"");
        let e = err(
            "policies:\n  circuitBreakers:\n    c:\n      trip: failures > 1\ntargets:\n  apps:\n    a:\n      circuitBreaker: c\n",
        );
        assert_eq!(
            e.to_string(),
            "circuit breaker c: invalid trip expression \"failures > 1\": unknown variable \"failures\""
        );
        assert!(matches!(e, ResiliencyError::Trip { .. }));
    }
}
