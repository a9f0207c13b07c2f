//! Percent-decoding as Go's lenient readers do it: `%XX` becomes its byte, a broken escape
//! stays as written, and bytes that are not UTF-8 are replaced.

use std::borrow::Cow;

/// Decodes `%XX` escapes; text without `%` is borrowed as is.
pub fn decode_lossy(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_and_broken_ones_stay() {
        assert_eq!(decode_lossy("a%20b"), "a b");
        assert_eq!(decode_lossy("100%"), "100%");
        assert_eq!(decode_lossy("%zz%41"), "%zzA");
        assert!(matches!(decode_lossy("plain"), Cow::Borrowed("plain")));
    }
}
