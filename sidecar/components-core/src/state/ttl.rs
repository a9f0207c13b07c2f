//! `ttlInSeconds`, the request metadata that gives a value a time to live.

use std::collections::HashMap;
use std::time::Duration;

use super::StateError;

/// What a write asks about expiry. The difference between "not said" and "never" matters
/// for stores with a component-wide default TTL (Redis `ttlInSeconds`): only an unspecified
/// TTL falls back to the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Ttl {
    /// No `ttlInSeconds` given.
    #[default]
    Unspecified,
    /// `ttlInSeconds` of `-1` or `0`: keep the value until deleted.
    Never,
    /// Expire after this long.
    After(Duration),
}

impl Ttl {
    /// The expiry to apply when the store has no default TTL of its own.
    pub fn duration(self) -> Option<Duration> {
        match self {
            Ttl::After(d) => Some(d),
            Ttl::Unspecified | Ttl::Never => None,
        }
    }
}

/// Reads Dapr's `ttlInSeconds` request metadata. As in Dapr, `-1` and `0` mean "never
/// expire"; anything below -1, above `i32::MAX` or not an integer is refused, in the words
/// of Dapr's shared TTL parser (Go's `strconv.ParseInt` error inside).
pub fn parse_ttl(metadata: &HashMap<String, String>) -> Result<Ttl, StateError> {
    let Some(raw) = metadata.get("ttlInSeconds").filter(|v| !v.is_empty()) else {
        return Ok(Ttl::Unspecified);
    };
    let secs: i64 = raw.parse().map_err(|e: std::num::ParseIntError| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        StateError::InvalidRequest(format!(
            "incorrect value for metadata 'ttlInSeconds': strconv.ParseInt: parsing {raw:?}: {why}"
        ))
    })?;
    if !(-1..=i64::from(i32::MAX)).contains(&secs) {
        return Err(StateError::InvalidRequest(
            "incorrect value for metadata 'ttlInSeconds': must be -1 or greater".to_string(),
        ));
    }
    Ok(if secs > 0 {
        Ttl::After(Duration::from_secs(secs as u64))
    } else {
        Ttl::Never
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(v: &str) -> HashMap<String, String> {
        HashMap::from([("ttlInSeconds".to_string(), v.to_string())])
    }

    #[test]
    fn parses_ttl_values() {
        assert_eq!(parse_ttl(&HashMap::new()).ok(), Some(Ttl::Unspecified));
        assert_eq!(parse_ttl(&md("")).ok(), Some(Ttl::Unspecified));
        assert_eq!(
            parse_ttl(&md("5")).ok(),
            Some(Ttl::After(Duration::from_secs(5)))
        );
        assert_eq!(parse_ttl(&md("-1")).ok(), Some(Ttl::Never));
        assert_eq!(parse_ttl(&md("0")).ok(), Some(Ttl::Never));
        assert!(parse_ttl(&md("-2")).is_err());
        assert!(parse_ttl(&md("2147483648")).is_err());
        assert!(parse_ttl(&md("abc")).is_err());
        assert!(parse_ttl(&md("1.5")).is_err());
        assert!(parse_ttl(&md(" 5")).is_err(), "Go does not trim");
    }

    #[test]
    fn refusals_have_daprs_words() {
        let text = |v: &str| parse_ttl(&md(v)).expect_err("refused").to_string();
        assert!(
            text("abc").ends_with(
                "incorrect value for metadata 'ttlInSeconds': strconv.ParseInt: parsing \"abc\": invalid syntax"
            ),
            "{}",
            text("abc")
        );
        assert!(text("99999999999999999999").ends_with("value out of range"));
        assert!(
            text("-5")
                .ends_with("incorrect value for metadata 'ttlInSeconds': must be -1 or greater")
        );
    }
}
