//! Command lines in Go's style. Dapr's binaries parse flags with Go's `flag` package,
//! which takes `-port 50001` as well as `--port 50001`, and Dapr's tooling (the CLI, the
//! Helm chart, the injector) writes the single-dash form; every binary here accepts both.

/// The arguments (program name first) with each single-dash long flag (`-app-id`,
/// `-port=1`) rewritten to its double-dash form, for a parser that knows only that one.
/// Short flags (`-h`), negative numbers and values are left alone.
pub fn go_style(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| {
            let single_dash_long = i > 0
                && a.starts_with('-')
                && !a.starts_with("--")
                && a.len() > 2
                && a.as_bytes()[1].is_ascii_alphabetic();
            if single_dash_long { format!("-{a}") } else { a }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        let args = [
            "sentry",
            "-port",
            "50001",
            "--trust-domain",
            "x",
            "-h",
            "-1",
            "-log-as-json=true",
        ];
        assert_eq!(
            go_style(args.map(String::from)),
            [
                "sentry",
                "--port",
                "50001",
                "--trust-domain",
                "x",
                "-h",
                "-1",
                "--log-as-json=true"
            ]
        );
    }
}
