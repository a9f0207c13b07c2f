//! JSON as Go's `encoding/json` writes it, which Dapr's HTTP error bodies go through: `<`,
//! `>` and `&` are escaped as `\u003c`, `\u003e`, `\u0026`, and U+2028/U+2029 as
//! `\u2028`/`\u2029`, so a caller comparing bodies byte for byte sees Dapr's bytes.

use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;

/// Compact output with Go's HTML-safe escaping of string contents (keys included).
struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escaped.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// `value` as Go's `json.Marshal` would encode it.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::to_vec;

    #[test]
    fn escapes_as_go_does() {
        let v = serde_json::json!({"a<b": "x > y && \u{2028}z\u{2029}", "q": "\"\n\\"});
        let got = String::from_utf8(to_vec(&v).expect("encode")).expect("utf8");
        assert_eq!(
            got,
            r#"{"a\u003cb":"x \u003e y \u0026\u0026 \u2028z\u2029","q":"\"\n\\"}"#
        );
    }

    #[test]
    fn plain_text_is_untouched() {
        let got = to_vec("state store s is not found (ü)").expect("encode");
        assert_eq!(got, "\"state store s is not found (ü)\"".as_bytes());
    }
}
