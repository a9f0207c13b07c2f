//! The control plane's Configuration (`daprsystem`) as Sentry reads it: how long workload
//! certificates live and how much clock skew they tolerate.

use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

/// Why the control plane's Configuration could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("not a YAML document: {0}")]
    Yaml(#[from] serde_saphyr::Error),
    #[error("invalid {key} {value:?}")]
    Duration {
        key: &'static str,
        value: String,
        #[source]
        source: kit::duration::DurationError,
    },
}

/// Dapr's defaults: 24 h certificates, 15 min skew.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_SKEW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningConfig {
    pub workload_cert_ttl: Duration,
    pub allowed_clock_skew: Duration,
}

impl Default for SigningConfig {
    fn default() -> Self {
        Self {
            workload_cert_ttl: DEFAULT_TTL,
            allowed_clock_skew: DEFAULT_SKEW,
        }
    }
}

/// Go-style durations as Dapr writes them: `24h`, `15m`, `1h30m`, `500ms`, `10s`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    kit::duration::go(text.trim()).ok()
}

impl SigningConfig {
    /// Reads `spec.mtls` from a Configuration document; anything missing keeps its default.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let doc: Value = serde_saphyr::from_str(text)?;
        let mtls = doc.pointer("/spec/mtls");
        let get = |key: &'static str| {
            mtls.and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .map(|s| {
                    kit::duration::go(s.trim()).map_err(|source| ConfigError::Duration {
                        key,
                        value: s.to_string(),
                        source,
                    })
                })
                .transpose()
        };
        let mut c = Self::default();
        if let Some(ttl) = get("workloadCertTTL")? {
            c.workload_cert_ttl = ttl;
        }
        if let Some(skew) = get("allowedClockSkew")? {
            c.allowed_clock_skew = skew;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_dapr_writes_them() {
        assert_eq!(parse_duration("24h"), Some(Duration::from_secs(86400)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn mtls_settings_come_from_the_configuration() {
        let c = SigningConfig::from_yaml(
            "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: daprsystem\nspec:\n  mtls:\n    enabled: true\n    workloadCertTTL: 4s\n    allowedClockSkew: 1m\n",
        )
        .expect("config");
        assert_eq!(c.workload_cert_ttl, Duration::from_secs(4));
        assert_eq!(c.allowed_clock_skew, Duration::from_secs(60));
        assert_eq!(
            SigningConfig::from_yaml("spec: {}\n").expect("config"),
            SigningConfig::default()
        );
        assert!(SigningConfig::from_yaml("spec:\n  mtls:\n    workloadCertTTL: soon\n").is_err());
    }
}
