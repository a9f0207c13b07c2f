//! The `Resiliency` resource (`dapr.io/v1alpha1`): named policies and the targets that use
//! them, with Dapr's defaults for anything left out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::breaker::{Breaker, BreakerSettings};
use super::policy::{Policies, Policy};
use super::retry::{Backoff, RetrySettings, StatusMatcher};
use super::trip::TripExpr;
use crate::components::properties::parse_duration;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResiliencySpec {
    #[serde(default)]
    pub policies: PoliciesSpec,
    #[serde(default)]
    pub targets: TargetsSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoliciesSpec {
    #[serde(default, deserialize_with = "text_map")]
    pub timeouts: HashMap<String, String>,
    #[serde(default)]
    pub retries: HashMap<String, RetrySpec>,
    #[serde(default)]
    pub circuit_breakers: HashMap<String, BreakerSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetrySpec {
    #[serde(default)]
    pub policy: String,
    #[serde(default, deserialize_with = "opt_text")]
    pub duration: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub max_interval: Option<String>,
    #[serde(default)]
    pub max_retries: Option<i64>,
    #[serde(default)]
    pub matching: Option<MatchingSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MatchingSpec {
    #[serde(default, rename = "httpStatusCodes", deserialize_with = "text")]
    pub http_status_codes: String,
    #[serde(default, rename = "gRPCStatusCodes", deserialize_with = "text")]
    pub grpc_status_codes: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakerSpec {
    #[serde(default)]
    pub max_requests: Option<u32>,
    #[serde(default, deserialize_with = "opt_text")]
    pub interval: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub timeout: Option<String>,
    #[serde(default)]
    pub trip: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TargetsSpec {
    #[serde(default)]
    pub apps: HashMap<String, TargetSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetSpec {
    #[serde(default, deserialize_with = "opt_text")]
    pub timeout: Option<String>,
    #[serde(default)]
    pub retry: Option<String>,
    #[serde(default)]
    pub circuit_breaker: Option<String>,
}

/// YAML writes `500` and `"500"` alike; Dapr reads both as text.
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    })
}

fn opt_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text(d).map(|s| Some(s).filter(|s| !s.is_empty()))
}

fn text_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<HashMap<String, String>, D::Error> {
    let raw: HashMap<String, serde_json::Value> = HashMap::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            )
        })
        .collect())
}

fn duration(raw: &str, what: &str) -> Result<Duration, String> {
    parse_duration(raw).ok_or_else(|| format!("invalid duration {raw:?} for {what}"))
}

fn retry(name: &str, spec: &RetrySpec) -> Result<RetrySettings, String> {
    let backoff = match spec.policy.as_str() {
        "" | "constant" => Backoff::Constant(match &spec.duration {
            Some(d) => duration(d, &format!("retry {name} duration"))?,
            None => Duration::from_secs(5),
        }),
        "exponential" => Backoff::Exponential {
            max_interval: match &spec.max_interval {
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

fn breaker(name: &str, spec: &BreakerSpec) -> Result<BreakerSettings, String> {
    Ok(BreakerSettings {
        max_requests: spec.max_requests.unwrap_or(1),
        interval: match &spec.interval {
            Some(d) => duration(d, &format!("circuit breaker {name} interval"))?,
            None => Duration::ZERO,
        },
        timeout: match &spec.timeout {
            Some(d) => duration(d, &format!("circuit breaker {name} timeout"))?,
            None => Duration::from_secs(60),
        },
        trip: TripExpr::parse(spec.trip.as_deref().unwrap_or("consecutiveFailures > 5"))
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
            let timeout = match &target.timeout {
                None => None,
                Some(t) => Some(match p.timeouts.get(t) {
                    Some(d) => duration(d, &format!("timeout {t}"))?,
                    // A duration written in place, as Dapr also allows.
                    None => parse_duration(t)
                        .ok_or_else(|| format!("app {app}: unknown timeout policy {t:?}"))?,
                }),
            };
            let retry = match &target.retry {
                None => None,
                Some(r) => Some(retry(
                    r,
                    p.retries
                        .get(r)
                        .ok_or_else(|| format!("app {app}: unknown retry policy {r:?}"))?,
                )?),
            };
            let breaker = match &target.circuit_breaker {
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

    fn spec(yaml: &str) -> ResiliencySpec {
        let v: serde_json::Value = serde_saphyr::from_str(yaml).expect("yaml");
        serde_json::from_value(v).expect("spec")
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
        ] {
            assert!(parse_resiliency(&[spec(bad)]).is_err(), "{bad}");
        }
    }
}
