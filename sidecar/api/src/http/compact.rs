//! Compact JSON for stored HTTP values.

/// Removes insignificant whitespace from already-validated JSON, keeping key order and
/// string contents. Dapr stores HTTP values re-marshalled, so compact; this gives compact
/// JSON without building a document tree (it is not byte-identical to Go's encoder, which
/// also reorders map keys and escapes `<>&`). One pass over the bytes (JSON's structural
/// characters are ASCII, UTF-8 continuation bytes never are); the output buffer starts
/// only at the first whitespace to drop, so compact input costs one copy.
pub fn compact_json(raw: &[u8]) -> Vec<u8> {
    let mut out: Option<Vec<u8>> = None;
    let (mut in_string, mut escaped) = (false, false);
    for (i, &b) in raw.iter().enumerate() {
        let keep = if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            true
        } else {
            in_string = b == b'"';
            !matches!(b, b' ' | b'\n' | b'\r' | b'\t')
        };
        match (&mut out, keep) {
            (Some(o), true) => o.push(b),
            (None, false) => {
                let mut o = Vec::with_capacity(raw.len());
                o.extend_from_slice(&raw[..i]);
                out = Some(o);
            }
            _ => {}
        }
    }
    out.unwrap_or_else(|| raw.to_vec())
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
