//! Dapr's storage key scheme: `<prefix>||<key>`, so several apps can share one store.

use components_core::Properties;
use thiserror::Error;

pub const SEPARATOR: &str = "||";

/// A `keyPrefix` that would make stored keys ambiguous.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("input key/keyPrefix '{strategy}' can't contain '{SEPARATOR}'")]
pub struct KeyPrefixError {
    /// The `keyPrefix` value, lowercased as Dapr reads it.
    pub strategy: String,
}

/// Computes the prefix (including the separator) from the `keyPrefix` metadata:
/// `appid` (default), `name`, `namespace`, `none`, or any other literal, lowercased as
/// Dapr does. `None` means keys are stored as given.
pub fn prefix_for(
    props: &Properties,
    store_name: &str,
    app_id: &str,
    namespace: Option<&str>,
) -> Result<Option<String>, KeyPrefixError> {
    let strategy = props
        .get("keyPrefix")
        .unwrap_or("appid")
        .to_ascii_lowercase();
    if strategy.contains(SEPARATOR) {
        return Err(KeyPrefixError { strategy });
    }
    let base = match strategy.as_str() {
        "none" => return Ok(None),
        "appid" if app_id.is_empty() => return Ok(None),
        "appid" => app_id.to_string(),
        "name" => store_name.to_string(),
        "namespace" if app_id.is_empty() => return Ok(None),
        "namespace" => match namespace.filter(|ns| !ns.is_empty()) {
            Some(ns) => format!("{ns}.{app_id}"),
            None => app_id.to_string(),
        },
        custom => custom.to_string(),
    };
    Ok(Some(format!("{base}{SEPARATOR}")))
}

/// The key as the caller knows it: the part after the first `||`, as Dapr strips it.
pub fn original_key(stored: &str) -> &str {
    match stored.split_once(SEPARATOR) {
        Some((_, rest)) => rest.split(SEPARATOR).next().unwrap_or(rest),
        None => stored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(value: Option<&str>, ns: Option<&str>) -> Option<String> {
        let props = match value {
            Some(v) => Properties::new([("keyPrefix", v)]),
            None => Properties::default(),
        };
        prefix_for(&props, "store", "myapp", ns).expect("valid prefix")
    }

    #[test]
    fn prefix_strategies() {
        assert_eq!(prefix(None, None).as_deref(), Some("myapp||"));
        assert_eq!(prefix(Some("appid"), None).as_deref(), Some("myapp||"));
        assert_eq!(prefix(Some("AppID"), None).as_deref(), Some("myapp||"));
        assert_eq!(prefix(Some("name"), None).as_deref(), Some("store||"));
        assert_eq!(
            prefix(Some("namespace"), Some("prod")).as_deref(),
            Some("prod.myapp||")
        );
        assert_eq!(prefix(Some("namespace"), None).as_deref(), Some("myapp||"));
        assert_eq!(prefix(Some("none"), None), None);
        assert_eq!(prefix(Some("Shared"), None).as_deref(), Some("shared||"));
        let bad = Properties::new([("keyPrefix", "a||b")]);
        assert!(prefix_for(&bad, "s", "a", None).is_err());
        let e = prefix_for(&Properties::new([("keyPrefix", "A||B")]), "s", "a", None);
        assert_eq!(
            e.expect_err("refused").to_string(),
            "input key/keyPrefix 'a||b' can't contain '||'"
        );
    }

    #[test]
    fn strips_prefixes() {
        assert_eq!(original_key("myapp||k"), "k");
        assert_eq!(original_key("k"), "k");
        assert_eq!(original_key("a||b||c"), "b");
    }
}
