//! Component metadata as components read it: case-insensitive names, Dapr's value syntaxes.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

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

    /// Parses `name` as `T`, with a message naming the key when it does not parse.
    pub fn parse<T: FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => raw
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("invalid value {raw:?} for metadata {name}")),
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
    pub fn duration(&self, name: &str) -> Result<Option<Duration>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => parse_duration(raw)
                .map(Some)
                .ok_or_else(|| format!("invalid duration {raw:?} for metadata {name}")),
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
}
