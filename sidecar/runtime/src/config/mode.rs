//! The values of `--mode` and `--app-protocol`, with the spellings Dapr accepts.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A value `--mode` or `--app-protocol` does not take; the text is Dapr's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid value for '{flag}': {value}")]
pub struct InvalidChoice {
    pub flag: &'static str,
    pub value: String,
}

/// Where the sidecar runs (`--mode`): it decides where resources and identity come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Resources from `--resources-path`, mDNS name resolution.
    #[default]
    Standalone,
    /// Resources from the operator, the projected token for Sentry, cluster DNS.
    Kubernetes,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Standalone => "standalone",
            Mode::Kubernetes => "kubernetes",
        }
    }
}

/// Exactly `standalone` or `kubernetes`, as Dapr compares them.
impl FromStr for Mode {
    type Err = InvalidChoice;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "standalone" => Ok(Mode::Standalone),
            "kubernetes" => Ok(Mode::Kubernetes),
            other => Err(InvalidChoice {
                flag: "mode",
                value: other.to_string(),
            }),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the sidecar talks to its app (`--app-protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppProtocol {
    #[default]
    Http,
    /// HTTP over TLS; the app's certificate is not verified, as in Dapr.
    Https,
    Grpc,
    /// gRPC over TLS, likewise unverified.
    Grpcs,
    /// HTTP/2 without TLS.
    H2c,
}

impl AppProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            AppProtocol::Http => "http",
            AppProtocol::Https => "https",
            AppProtocol::Grpc => "grpc",
            AppProtocol::Grpcs => "grpcs",
            AppProtocol::H2c => "h2c",
        }
    }
}

/// Any case, and empty for `http`, as Dapr reads the flag.
impl FromStr for AppProtocol {
    type Err = InvalidChoice;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "" | "http" => Ok(AppProtocol::Http),
            "https" => Ok(AppProtocol::Https),
            "grpc" => Ok(AppProtocol::Grpc),
            "grpcs" => Ok(AppProtocol::Grpcs),
            "h2c" => Ok(AppProtocol::H2c),
            _ => Err(InvalidChoice {
                flag: "app-protocol",
                value: s.to_string(),
            }),
        }
    }
}

impl fmt::Display for AppProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_in_any_case_and_empty_is_http() {
        for (text, want) in [
            ("http", AppProtocol::Http),
            ("HTTPS", AppProtocol::Https),
            ("gRPC", AppProtocol::Grpc),
            ("grpcs", AppProtocol::Grpcs),
            ("H2C", AppProtocol::H2c),
            ("", AppProtocol::Http),
        ] {
            assert_eq!(text.parse::<AppProtocol>(), Ok(want), "{text}");
        }
        let bad = "ftp".parse::<AppProtocol>().expect_err("refused");
        assert_eq!(bad.to_string(), "invalid value for 'app-protocol': ftp");
    }

    #[test]
    fn modes_are_exact() {
        assert_eq!("kubernetes".parse::<Mode>(), Ok(Mode::Kubernetes));
        assert_eq!("standalone".parse::<Mode>(), Ok(Mode::Standalone));
        let bad = "Kubernetes".parse::<Mode>().expect_err("refused");
        assert_eq!(bad.to_string(), "invalid value for 'mode': Kubernetes");
    }
}
