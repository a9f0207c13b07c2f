use std::collections::HashMap;
use std::time::Duration;

use super::StateError;

/// Reads Dapr's `ttlInSeconds` request metadata. As in Dapr, `-1` and `0` mean "never
/// expire" (and clear an earlier expiry); anything below -1, above `i32::MAX` or not an
/// integer is refused.
pub fn parse_ttl(metadata: &HashMap<String, String>) -> Result<Option<Duration>, StateError> {
    let Some(raw) = metadata.get("ttlInSeconds").filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let secs: i64 = raw.trim().parse().map_err(|_| {
        StateError::InvalidRequest(format!(
            "incorrect value for metadata 'ttlInSeconds': {raw}"
        ))
    })?;
    if !(-1..=i64::from(i32::MAX)).contains(&secs) {
        return Err(StateError::InvalidRequest(format!(
            "incorrect value for metadata 'ttlInSeconds': must be -1 or greater, and at most {}",
            i32::MAX
        )));
    }
    Ok((secs > 0).then(|| Duration::from_secs(secs as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(v: &str) -> HashMap<String, String> {
        HashMap::from([("ttlInSeconds".to_string(), v.to_string())])
    }

    #[test]
    fn parses_ttl_values() {
        assert_eq!(parse_ttl(&HashMap::new()).ok(), Some(None));
        assert_eq!(parse_ttl(&md("5")).ok(), Some(Some(Duration::from_secs(5))));
        assert_eq!(parse_ttl(&md("-1")).ok(), Some(None));
        assert_eq!(parse_ttl(&md("0")).ok(), Some(None));
        assert!(parse_ttl(&md("-2")).is_err());
        assert!(parse_ttl(&md("2147483648")).is_err());
        assert!(parse_ttl(&md("abc")).is_err());
        assert!(parse_ttl(&md("1.5")).is_err());
    }
}
