//! The W3C `baggage` header, checked as Dapr checks it before a call goes further: a
//! malformed one is refused (HTTP 400, gRPC `InvalidArgument`) with OpenTelemetry's
//! reason, a good one is passed on as it came and echoed in the answer.

/// The `baggage` header (and gRPC metadata key).
pub const BAGGAGE: &str = "baggage";

/// OpenTelemetry's limits on one baggage string.
const MAX_MEMBERS: usize = 64;
const MAX_BYTES: usize = 8192;

/// Why a `baggage` header was refused, worded as OpenTelemetry's Go parser words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaggageError {
    #[error("invalid baggage list-member: {0:?}")]
    Member(String),
    #[error("invalid baggage key: {0:?}")]
    Key(String),
    #[error("invalid baggage value: {0:?}")]
    Value(String),
    #[error("invalid baggage list-member property: {0:?}")]
    Property(String),
    #[error("too many list-members in baggage-string")]
    TooManyMembers,
    #[error("baggage-string too large")]
    TooLarge,
}

/// RFC 7230 `tchar`: what a baggage key may be made of.
fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(is_token_char)
}

/// W3C `baggage-octet`, plus `%XX` escapes (which must decode).
fn valid_value(value: &str) -> bool {
    let b = value.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let hex = value.get(i + 1..i + 3);
            if hex.is_none_or(|h| u8::from_str_radix(h, 16).is_err()) {
                return false;
            }
            i += 3;
            continue;
        }
        let octet = matches!(c, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e);
        if !octet {
            return false;
        }
        i += 1;
    }
    true
}

const OWS: [char; 2] = [' ', '\t'];

/// A request's `baggage` header lines joined with `,`, once checked: `Ok(None)` when
/// there is none.
pub fn joined<'a>(
    lines: impl IntoIterator<Item = &'a str>,
) -> Result<Option<String>, BaggageError> {
    let lines: Vec<&str> = lines.into_iter().collect();
    if lines.is_empty() {
        return Ok(None);
    }
    let joined = lines.join(",");
    validate(&joined)?;
    Ok(Some(joined))
}

/// Checks a `baggage` header (several header lines are joined with `,` first).
pub fn validate(header: &str) -> Result<(), BaggageError> {
    if header.len() > MAX_BYTES {
        return Err(BaggageError::TooLarge);
    }
    let mut members = 0;
    for member in header.split(',') {
        if member.trim_matches(OWS).is_empty() {
            return Err(BaggageError::Member(member.to_string()));
        }
        members += 1;
        if members > MAX_MEMBERS {
            return Err(BaggageError::TooManyMembers);
        }
        let mut parts = member.split(';');
        let pair = parts.next().unwrap_or_default();
        let Some((key, value)) = pair.split_once('=') else {
            return Err(BaggageError::Member(member.to_string()));
        };
        let key = key.trim_matches(OWS);
        if !valid_key(key) {
            return Err(BaggageError::Key(key.to_string()));
        }
        let value = value.trim_matches(OWS);
        if !valid_value(value) {
            return Err(BaggageError::Value(value.to_string()));
        }
        for property in parts {
            let (pkey, pvalue) = match property.split_once('=') {
                Some((k, v)) => (k.trim_matches(OWS), Some(v.trim_matches(OWS))),
                None => (property.trim_matches(OWS), None),
            };
            if !valid_key(pkey) || pvalue.is_some_and(|v| !valid_value(v)) {
                return Err(BaggageError::Property(property.to_string()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_baggage_passes() {
        for good in [
            "userId=alice",
            "userId=alice,serverNode=DF%2028,isProduction=false",
            "key1=value1;property1;property2=x, key2 = value2",
            "k=",
        ] {
            assert_eq!(validate(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn malformed_baggage_is_refused_with_a_reason() {
        assert_eq!(
            validate("novalue"),
            Err(BaggageError::Member("novalue".into()))
        );
        assert_eq!(
            validate("bad key=v"),
            Err(BaggageError::Key("bad key".into()))
        );
        assert_eq!(
            validate("k=has\"quote"),
            Err(BaggageError::Value("has\"quote".into()))
        );
        assert_eq!(validate("k=%zz"), Err(BaggageError::Value("%zz".into())));
        assert_eq!(
            validate("k=v;bad prop"),
            Err(BaggageError::Property("bad prop".into()))
        );
        assert_eq!(
            validate("a=1,,b=2"),
            Err(BaggageError::Member(String::new()))
        );
        let many = (0..65)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(validate(&many), Err(BaggageError::TooManyMembers));
        assert_eq!(
            validate(&format!("k={}", "v".repeat(MAX_BYTES))),
            Err(BaggageError::TooLarge)
        );
        assert_eq!(
            validate("novalue").map_err(|e| e.to_string()),
            Err("invalid baggage list-member: \"novalue\"".into())
        );
    }
}
