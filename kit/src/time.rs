//! Timestamps as Dapr writes them: RFC 3339 in UTC, `Z`-suffixed, the way Go's `time`
//! package prints `time.RFC3339` (whole seconds, `ttlExpireTime`) and `time.RFC3339Nano`
//! (log lines: the fraction without trailing zeros).

use std::time::SystemTime;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Printed for instants RFC 3339 cannot hold (years past 9999); Dapr never writes those.
const UNREPRESENTABLE: &str = "1970-01-01T00:00:00Z";

fn format(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| UNREPRESENTABLE.to_string())
}

/// Whole seconds, as Go's `time.RFC3339` (`2024-05-01T12:00:00Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let t = OffsetDateTime::from(t);
    format(t.replace_nanosecond(0).unwrap_or(t))
}

/// Nanosecond precision with trailing zeros dropped, as Go's `time.RFC3339Nano`
/// (`2024-05-01T12:00:00.5Z`; no fraction at all on a whole second).
pub fn rfc3339_nanos(t: SystemTime) -> String {
    format(OffsetDateTime::from(t))
}

/// Reads an RFC 3339 timestamp (any offset, any fraction), as Go's `time.Parse` with
/// `time.RFC3339` does; `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .ok()
        .map(SystemTime::from)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn parses_what_it_prints_and_other_offsets() {
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        assert_eq!(parse_rfc3339("2000-02-29T01:00:00+01:00"), Some(t));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn whole_seconds_as_go_prints_rfc3339() {
        let at = |s: u64, n: u32| rfc3339(UNIX_EPOCH + Duration::new(s, n));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400, 999_999_999), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_714_564_800, 0), "2024-05-01T12:00:00Z");
        assert_eq!(at(4_102_444_799, 1), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn nanoseconds_as_go_prints_rfc3339nano() {
        let at = |s: u64, n: u32| rfc3339_nanos(UNIX_EPOCH + Duration::new(s, n));
        assert_eq!(at(1_714_564_800, 0), "2024-05-01T12:00:00Z");
        assert_eq!(at(1_714_564_800, 500_000_000), "2024-05-01T12:00:00.5Z");
        assert_eq!(
            at(1_714_564_800, 123_456_789),
            "2024-05-01T12:00:00.123456789Z"
        );
        assert_eq!(at(1_714_564_800, 1_000), "2024-05-01T12:00:00.000001Z");
    }
}
