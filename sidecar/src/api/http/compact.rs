/// Removes insignificant whitespace from already-validated JSON in one pass, keeping key
/// order and string contents. Dapr stores HTTP values re-marshalled, so compact; this
/// gives compact JSON without building a document tree. It is not byte-identical to Go's
/// encoder, which also reorders map keys and escapes `<>&`.
pub fn compact_json(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in raw.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::compact_json;

    #[test]
    fn strips_whitespace_outside_strings_only() {
        assert_eq!(
            compact_json(r#"{ "a" : [1, 2],"b":"x y" }"#),
            r#"{"a":[1,2],"b":"x y"}"#
        );
        assert_eq!(
            compact_json(r#""quote \" and space ""#),
            r#""quote \" and space ""#
        );
        assert_eq!(
            compact_json("{\n\t\"k\": \"\\\\\" , \"z\" : null}"),
            r#"{"k":"\\","z":null}"#
        );
        assert_eq!(compact_json("42"), "42");
    }
}
