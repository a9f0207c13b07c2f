//! Durations as Dapr reads them. Go's `time.ParseDuration` is the grammar (`1h2m3.5s`,
//! `300ms`, `1µs`, `-1.5h`, `0`); where Dapr accepts a bare integer, what it means
//! depends on where it is written, so each place has its own entry point:
//!
//! | where | bare `20` | entry point |
//! |---|---|---|
//! | Configuration, flags, Sentry | refused ("missing unit") | [`go`] |
//! | component metadata | 20 seconds | [`metadata`] |
//! | Resiliency timeouts, retries, breakers | 20 milliseconds | [`resiliency`] |

use std::time::Duration;

use thiserror::Error;

/// Why a duration could not be read; the text follows Go's messages.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DurationError {
    #[error("time: invalid duration {0:?}")]
    Invalid(String),
    #[error("time: missing unit in duration {0:?}")]
    MissingUnit(String),
    #[error("time: unknown unit {unit:?} in duration {text:?}")]
    UnknownUnit { unit: String, text: String },
    /// Negative durations parse, but nothing Dapr configures may be negative.
    #[error("negative duration {0:?}")]
    Negative(String),
}

const NANOS_PER: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000), // U+00B5 micro sign
    ("μs", 1_000), // U+03BC Greek mu
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// The largest magnitude Go's `time.Duration` (int64 nanoseconds) holds.
const MAX: u64 = 1 << 63;

/// Leading decimal digits of `s` as a number, and the rest; `None` on overflow.
fn leading_int(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let mut x: u64 = 0;
    for b in s[..end].bytes() {
        x = x.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        if x > MAX {
            return None;
        }
    }
    Some((x, &s[end..]))
}

/// Go's `time.ParseDuration`, exactly: signed nanoseconds.
pub fn parse_nanos(text: &str) -> Result<i64, DurationError> {
    let invalid = || DurationError::Invalid(text.to_string());
    let (negative, mut s) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s.starts_with('.') || s.as_bytes()[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let before = s.len();
        let (whole, rest) = leading_int(s).ok_or_else(invalid)?;
        let had_whole = rest.len() != before;
        s = rest;
        let (mut fraction, mut scale, mut had_fraction) = (0u64, 1f64, false);
        if let Some(rest) = s.strip_prefix('.') {
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            had_fraction = end > 0;
            // As Go: digits past what an int64 holds are read but no longer counted.
            for b in rest[..end].bytes() {
                if fraction > (MAX - 1) / 10 {
                    break;
                }
                fraction = fraction * 10 + u64::from(b - b'0');
                scale *= 10.0;
            }
            s = &rest[end..];
        }
        if !had_whole && !had_fraction {
            return Err(invalid());
        }
        let unit_end = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_end == 0 {
            return Err(DurationError::MissingUnit(text.to_string()));
        }
        let unit = &s[..unit_end];
        s = &s[unit_end..];
        let per = NANOS_PER
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, n)| *n)
            .ok_or_else(|| DurationError::UnknownUnit {
                unit: unit.to_string(),
                text: text.to_string(),
            })?;
        let mut v = whole
            .checked_mul(per)
            .filter(|v| *v <= MAX)
            .ok_or_else(invalid)?;
        if fraction > 0 {
            // As Go: the fraction is scaled in floating point, then truncated.
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let extra = (fraction as f64 * (per as f64 / scale)) as u64;
            v = v
                .checked_add(extra)
                .filter(|v| *v <= MAX)
                .ok_or_else(invalid)?;
        }
        total = total
            .checked_add(v)
            .filter(|v| *v <= MAX)
            .ok_or_else(invalid)?;
    }
    if negative {
        // -(1<<63) is the one magnitude that fits only when negative.
        Ok(0i64.checked_sub_unsigned(total).ok_or_else(invalid)?)
    } else {
        i64::try_from(total).map_err(|_| invalid())
    }
}

fn non_negative(text: &str, nanos: i64) -> Result<Duration, DurationError> {
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| DurationError::Negative(text.to_string()))
}

/// A Go duration, strictly: what Configuration fields and flags hold.
pub fn go(text: &str) -> Result<Duration, DurationError> {
    non_negative(text, parse_nanos(text)?)
}

/// A component metadata duration: a Go duration, or else a bare integer of seconds
/// (dapr/kit's metadata decoder).
pub fn metadata(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    match parse_nanos(text) {
        Ok(nanos) => non_negative(text, nanos),
        Err(e) => match text.parse::<u64>() {
            Ok(secs) => Ok(Duration::from_secs(secs)),
            Err(_) => Err(e),
        },
    }
}

/// A Resiliency duration: a bare integer of milliseconds first, else a Go duration (as
/// Dapr's resiliency decoder tries them).
pub fn resiliency(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    match text.parse::<u64>() {
        Ok(ms) => Ok(Duration::from_millis(ms)),
        Err(_) => go(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs and what Go 1.26's `time.ParseDuration` returns for them, in nanoseconds.
    const GO: &[(&str, i64)] = &[
        ("0", 0),
        ("-0", 0),
        ("+0", 0),
        ("5s", 5_000_000_000),
        ("30s", 30_000_000_000),
        ("1478s", 1_478_000_000_000),
        ("-5s", -5_000_000_000),
        ("+5s", 5_000_000_000),
        ("-0s", 0),
        ("5.0s", 5_000_000_000),
        ("5.6s", 5_600_000_000),
        ("5.s", 5_000_000_000),
        (".5s", 500_000_000),
        ("1.0s", 1_000_000_000),
        ("1.00s", 1_000_000_000),
        ("1.004s", 1_004_000_000),
        ("1.0040s", 1_004_000_000),
        ("100.00100s", 100_001_000_000),
        ("10ns", 10),
        ("11us", 11_000),
        ("12µs", 12_000),
        ("12μs", 12_000),
        ("13ms", 13_000_000),
        ("14s", 14_000_000_000),
        ("15m", 900_000_000_000),
        ("16h", 57_600_000_000_000),
        ("3h30m", 12_600_000_000_000),
        ("10.5s4m", 250_500_000_000),
        ("-2m3.4s", -123_400_000_000),
        ("1h2m3s4ms5us6ns", 3_723_004_005_006),
        ("39h9m14.425s", 140_954_425_000_000),
        ("52763797000ns", 52_763_797_000),
        ("0.3333333333333333333h", 1_200_000_000_000),
        ("9007199254740993ns", 9_007_199_254_740_993),
        ("9223372036854775807ns", i64::MAX),
        ("9223372036854775.807us", i64::MAX),
        ("9223372036s854ms775us807ns", i64::MAX),
        ("-9223372036854775808ns", i64::MIN),
        ("-9223372036854775.808us", i64::MIN),
        ("0.100000000000000000000h", 360_000_000_000),
        ("0.830103483285477580700h", 2_988_372_539_827),
        ("1s.5s", 1_500_000_000),
    ];

    #[test]
    fn reads_what_go_reads() {
        for (text, want) in GO {
            assert_eq!(parse_nanos(text), Ok(*want), "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses() {
        for text in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "1.5.5s",
            "5 s",
            " 5s",
            "5S",
            "15min",
            "3000000h",
            "9223372036854775808ns",
            "9223372036854775.808us",
            "99999999999999999999999h",
            "\u{0}1s",
        ] {
            assert!(parse_nanos(text).is_err(), "{text:?} should be refused");
        }
        assert_eq!(
            parse_nanos("3"),
            Err(DurationError::MissingUnit("3".into()))
        );
        assert_eq!(
            parse_nanos("1d").map_err(|e| e.to_string()),
            Err("time: unknown unit \"d\" in duration \"1d\"".into())
        );
    }

    #[test]
    fn a_bare_integer_means_what_dapr_means_where_it_is_written() {
        assert!(go("20").is_err());
        assert_eq!(metadata("20"), Ok(Duration::from_secs(20)));
        assert_eq!(metadata(" 1m30s "), Ok(Duration::from_secs(90)));
        assert_eq!(resiliency("20"), Ok(Duration::from_millis(20)));
        assert_eq!(resiliency("20s"), Ok(Duration::from_secs(20)));
        assert!(go("-1s").is_err());
        assert!(metadata("soon").is_err());
    }
}
