/// Parses a Kubernetes resource quantity as Dapr's `--max-body-size 4Mi` takes it:
/// binary suffixes (`Ki`, `Mi`, `Gi`, `Ti`), decimal ones (`k`, `M`, `G`, `T`) or bytes.
pub fn parse_quantity(raw: &str) -> Option<u64> {
    let s = raw.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let value: f64 = num.parse().ok()?;
    let scale: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return None,
    };
    Some((value * scale).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quantities() {
        assert_eq!(parse_quantity("4Mi"), Some(4 * 1024 * 1024));
        assert_eq!(parse_quantity("4Ki"), Some(4096));
        assert_eq!(parse_quantity("1M"), Some(1_000_000));
        assert_eq!(parse_quantity("512"), Some(512));
        assert_eq!(parse_quantity("1.5Ki"), Some(1536));
        assert_eq!(parse_quantity("4Xi"), None);
        assert_eq!(parse_quantity(""), None);
        assert_eq!(parse_quantity("-1"), None);
    }
}
