//! Which token a workload shows Sentry, found where Dapr looks for it: the file named by
//! `DAPR_SENTRY_TOKEN_FILE` when that is set, else (in Kubernetes) the projected
//! ServiceAccount token the injector mounts, else the legacy ServiceAccount token.
//!
//! Dapr itself sends an empty token when none is found and lets Sentry refuse; here a
//! Kubernetes-mode workload is told at once, so that a missing mount is named in its own
//! log rather than in a refusal from Sentry.

use std::path::{Path, PathBuf};

use proto::sentry::v1::sign_certificate_request::TokenValidator;
use thiserror::Error;

/// Where the injector mounts the projected token whose audience is Sentry.
pub const KUBERNETES_TOKEN_PATH: &str = "/var/run/secrets/dapr.io/sentrytoken/token";
/// The ServiceAccount token every Pod had before projected tokens; read when the
/// projected one is absent, as Dapr does for older control planes.
pub const LEGACY_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Names a token file to use instead (Dapr's JWKS validator, or a Kubernetes token
/// mounted elsewhere).
pub const TOKEN_FILE_VAR: &str = "DAPR_SENTRY_TOKEN_FILE";

/// A token and the validator Sentry should check it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentryToken {
    pub value: String,
    pub validator: TokenValidator,
}

impl SentryToken {
    /// No token: Sentry's INSECURE validator, which only a standalone Sentry accepts.
    pub fn insecure() -> Self {
        SentryToken {
            value: String::new(),
            validator: TokenValidator::Insecure,
        }
    }
}

#[derive(Debug, Error)]
pub enum TokenError {
    #[error("environment variable {TOKEN_FILE_VAR} is set with an empty value")]
    EmptyVariable,
    #[error("failed to read the Sentry token at {path:?}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the Sentry token at {path:?} is empty")]
    Empty { path: PathBuf },
    #[error(
        "no Sentry token: {KUBERNETES_TOKEN_PATH} is not mounted (is the Pod injected?) and \
         {TOKEN_FILE_VAR} is not set; without a token Sentry gives no certificate"
    )]
    Missing,
}

/// Where to look; [`find_dapr`] uses Dapr's places, tests give their own.
pub struct Places<'a> {
    /// `DAPR_SENTRY_TOKEN_FILE`'s value, when set.
    pub token_file_var: Option<&'a str>,
    pub kubernetes: &'a Path,
    pub legacy: &'a Path,
}

/// Finds this process's token where Dapr looks: its `DAPR_SENTRY_TOKEN_FILE` and Dapr's
/// mount paths.
pub fn find_dapr(kubernetes: bool) -> Result<SentryToken, TokenError> {
    let var = std::env::var(TOKEN_FILE_VAR).ok();
    find(
        kubernetes,
        &Places {
            token_file_var: var.as_deref(),
            kubernetes: Path::new(KUBERNETES_TOKEN_PATH),
            legacy: Path::new(LEGACY_TOKEN_PATH),
        },
    )
}

/// Finds the token for a workload in Kubernetes mode (`kubernetes`) or standalone.
/// In Kubernetes a token is required: [`TokenError::Missing`] when there is none.
/// Standalone, no token means [`SentryToken::insecure`].
pub fn find(kubernetes: bool, places: &Places<'_>) -> Result<SentryToken, TokenError> {
    if let Some(path) = places.token_file_var {
        if path.is_empty() {
            return Err(TokenError::EmptyVariable);
        }
        let value = read(Path::new(path))?;
        // A named file is for the JWKS validator, unless this is Kubernetes.
        let validator = if kubernetes {
            TokenValidator::Kubernetes
        } else {
            TokenValidator::Jwks
        };
        return Ok(SentryToken { value, validator });
    }
    if !kubernetes {
        return Ok(SentryToken::insecure());
    }
    for path in [places.kubernetes, places.legacy] {
        match read(path) {
            Ok(value) => {
                if path == places.legacy {
                    tracing::warn!(
                        "using the legacy ServiceAccount token {}: the projected Sentry token is not mounted",
                        path.display()
                    );
                }
                return Ok(SentryToken {
                    value,
                    validator: TokenValidator::Kubernetes,
                });
            }
            Err(TokenError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Err(TokenError::Missing)
}

fn read(path: &Path) -> Result<String, TokenError> {
    let bytes = std::fs::read(path).map_err(|source| TokenError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value = String::from_utf8_lossy(&bytes).trim().to_string();
    if value.is_empty() {
        return Err(TokenError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new() -> Self {
            Dir(tempfile::tempdir().expect("dir"))
        }
        fn file(&self, name: &str, content: &str) -> PathBuf {
            let path = self.0.path().join(name);
            std::fs::write(&path, content).expect("write");
            path
        }
        fn absent(&self, name: &str) -> PathBuf {
            self.0.path().join(name)
        }
    }

    #[test]
    fn kubernetes_mode_reads_the_projected_token_then_the_legacy_one() {
        let d = Dir::new();
        let (projected, legacy) = (d.file("projected", "tok-p\n"), d.file("legacy", "tok-l"));
        let found = |k: &Path, l: &Path| {
            find(
                true,
                &Places {
                    token_file_var: None,
                    kubernetes: k,
                    legacy: l,
                },
            )
        };
        let t = found(&projected, &legacy).expect("token");
        assert_eq!(
            (t.value.as_str(), t.validator),
            ("tok-p", TokenValidator::Kubernetes)
        );
        let t = found(&d.absent("none"), &legacy).expect("token");
        assert_eq!(t.value, "tok-l");
        let e = found(&d.absent("none"), &d.absent("none2")).expect_err("missing");
        assert!(matches!(e, TokenError::Missing), "{e}");
        // An empty mount is an error, not a fallback.
        let empty = d.file("empty", " \n");
        let e = found(&empty, &legacy).expect_err("empty");
        assert!(matches!(e, TokenError::Empty { .. }), "{e}");
    }

    #[test]
    fn the_token_file_variable_wins_and_names_the_validator() {
        let d = Dir::new();
        let named = d.file("named", "tok-n");
        let named_str = named.display().to_string();
        let places = Places {
            token_file_var: Some(&named_str),
            kubernetes: &d.absent("x"),
            legacy: &d.absent("y"),
        };
        let k = find(true, &places).expect("kubernetes");
        assert_eq!(
            (k.value.as_str(), k.validator),
            ("tok-n", TokenValidator::Kubernetes)
        );
        let s = find(false, &places).expect("standalone");
        assert_eq!(s.validator, TokenValidator::Jwks);
        let places = Places {
            token_file_var: Some(""),
            ..places
        };
        assert!(matches!(
            find(false, &places),
            Err(TokenError::EmptyVariable)
        ));
        let missing = d.absent("gone").display().to_string();
        let places = Places {
            token_file_var: Some(&missing),
            ..places
        };
        assert!(matches!(find(true, &places), Err(TokenError::Read { .. })));
    }

    #[test]
    fn standalone_without_a_token_is_insecure() {
        let d = Dir::new();
        let legacy = d.file("legacy", "tok-l");
        let t = find(
            false,
            &Places {
                token_file_var: None,
                kubernetes: &d.absent("x"),
                legacy: &legacy,
            },
        )
        .expect("insecure");
        assert_eq!(t, SentryToken::insecure());
    }
}
