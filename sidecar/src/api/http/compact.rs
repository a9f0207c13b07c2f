//! Compact JSON for stored HTTP values.

/// Removes insignificant whitespace from already-validated JSON, keeping key order and
/// string contents. Dapr stores HTTP values re-marshalled, so compact; this gives compact
/// JSON without building a document tree (it is not byte-identical to Go's encoder, which
/// also reorders map keys and escapes `<>&`). Works on bytes: JSON's structural characters
/// are ASCII, and UTF-8 continuation bytes never are. Already-compact input is one memcpy.
pub fn compact_json(raw: &[u8]) -> Vec<u8> {
    let Some(first) = first_insignificant_space(raw) else {
        return raw.to_vec();
    };
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(&raw[..first]);
    let (mut in_string, mut escaped) = (false, false);
    for &b in &raw[first..] {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
            out.push(b);
        } else if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            out.push(b);
        }
    }
    out
}

/// Where the first whitespace outside a string is, if anywhere.
fn first_insignificant_space(raw: &[u8]) -> Option<usize> {
    let (mut in_string, mut escaped) = (false, false);
    for (i, &b) in raw.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::compact_json;

    fn c(s: &str) -> String {
        String::from_utf8(compact_json(s.as_bytes())).expect("utf8 preserved")
    }

    #[test]
    fn strips_whitespace_outside_strings_only() {
        assert_eq!(
            c(r#"{ "a" : [1, 2],"b":"x y" }"#),
            r#"{"a":[1,2],"b":"x y"}"#
        );
        assert_eq!(c(r#""quote \" and space ""#), r#""quote \" and space ""#);
        assert_eq!(
            c("{\n\t\"k\": \"\\\\\" , \"z\" : null}"),
            r#"{"k":"\\","z":null}"#
        );
        assert_eq!(c("42"), "42");
        assert_eq!(c(r#"{"é": "ü ö", "k":1}"#), r#"{"é":"ü ö","k":1}"#);
        assert_eq!(c(r#"{"already":"compact"}"#), r#"{"already":"compact"}"#);
    }
}
