//! Component metadata as components read it: case-insensitive names, Dapr's value syntaxes.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::str::FromStr;
use std::time::Duration;

use kit::duration::DurationError;
use thiserror::Error;

/// A metadata value a component cannot use, with the key and value as written.
#[derive(Debug, Error)]
pub enum PropertyError {
    /// The value does not parse as the type the component reads it as.
    #[error("invalid value {value:?} for metadata {name}")]
    Invalid {
        name: String,
        value: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The value is neither a Go duration nor a bare number of seconds.
    #[error("invalid duration {value:?} for metadata {name}")]
    Duration {
        name: String,
        value: String,
        #[source]
        source: DurationError,
    },
}

impl PropertyError {
    /// The metadata key, as the component asked for it.
    pub fn name(&self) -> &str {
        match self {
            Self::Invalid { name, .. } | Self::Duration { name, .. } => name,
        }
    }

    /// The value as written.
    pub fn value(&self) -> &str {
        match self {
            Self::Invalid { value, .. } | Self::Duration { value, .. } => value,
        }
    }
}

/// Equal when the same key and value failed the same way; the reason follows from those.
impl PartialEq for PropertyError {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.name() == other.name()
            && self.value() == other.value()
    }
}

/// A component's resolved `spec.metadata`. Dapr matches metadata names without regard to
/// case (`redisHost` and `redishost` are the same key), so lookups here do too.
#[derive(Debug, Clone, Default)]
pub struct Properties {
    by_lower: HashMap<String, String>,
}

impl Properties {
    pub fn new<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        Self {
            by_lower: pairs
                .into_iter()
                .map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.into()))
                .collect(),
        }
    }

    /// Sets `name` (replacing any value of any case), for defaults the runtime fills in.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.by_lower
            .insert(name.to_ascii_lowercase(), value.into());
    }

    /// The value of `name`, if set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.by_lower
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn get_or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.get(name).unwrap_or(default)
    }

    /// Parses `name` as `T`; an error names the key and keeps the parser's reason.
    pub fn parse<T>(&self, name: &str) -> Result<Option<T>, PropertyError>
    where
        T: FromStr,
        T::Err: StdError + Send + Sync + 'static,
    {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => raw
                .trim()
                .parse()
                .map(Some)
                .map_err(|e| PropertyError::Invalid {
                    name: name.to_string(),
                    value: raw.to_string(),
                    source: Box::new(e),
                }),
        }
    }

    /// Dapr's lenient boolean: `true`, `1`, `yes`, `on` (any case) are true.
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "true" | "1" | "yes" | "on" | "y"
            )
        })
    }

    /// A duration written either as Go duration (`10s`, `1m30s`, `500ms`) or bare seconds.
    pub fn duration(&self, name: &str) -> Result<Option<Duration>, PropertyError> {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => {
                kit::duration::metadata(raw)
                    .map(Some)
                    .map_err(|source| PropertyError::Duration {
                        name: name.to_string(),
                        value: raw.to_string(),
                        source,
                    })
            }
        }
    }
}

/// A component metadata duration: a Go duration, or a bare integer of seconds, as Dapr's
/// metadata decoder reads them.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    kit::duration::metadata(raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_and_empty_values() {
        let p = Properties::new([("redisHost", "h:1"), ("Empty", "")]);
        assert_eq!(p.get("redishost"), Some("h:1"));
        assert_eq!(p.get("REDISHOST"), Some("h:1"));
        assert_eq!(p.get("empty"), None);
        assert_eq!(p.get_or("missing", "d"), "d");
    }

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("20"), Some(Duration::from_secs(20)));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn flags_and_numbers() {
        let p = Properties::new([("a", "True"), ("b", "0"), ("n", "12"), ("bad", "x")]);
        assert!(p.flag("a"));
        assert!(!p.flag("b"));
        assert!(!p.flag("missing"));
        assert_eq!(p.parse::<u32>("n"), Ok(Some(12)));
        assert!(p.parse::<u32>("bad").is_err());
    }

    #[test]
    fn errors_name_the_key_and_keep_the_reason() {
        let p = Properties::new([("port", "x1"), ("wait", "5x")]);
        let e = p.parse::<u16>("Port").expect_err("not a number");
        assert_eq!(e.to_string(), r#"invalid value "x1" for metadata Port"#);
        assert_eq!(e.name(), "Port");
        assert!(
            e.source()
                .is_some_and(|s| s.is::<std::num::ParseIntError>())
        );
        let e = p.duration("wait").expect_err("not a duration");
        assert_eq!(e.to_string(), r#"invalid duration "5x" for metadata wait"#);
        assert!(matches!(e, PropertyError::Duration { .. }));
    }
}
