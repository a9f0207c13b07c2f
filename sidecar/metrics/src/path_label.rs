//! The `path` label of HTTP server metrics, chosen as Dapr chooses it: by default
//! (`increasedCardinality: true`) the request path with its variable parts cut off
//! (`/v1.0/state/statestore/key` → `/v1.0/state/statestore`); with
//! `increasedCardinality: false` no path at all; with `pathMatching` the first pattern
//! that matches, Go `ServeMux` style (`/orders/{id}`), an unmatched path being empty.

use std::borrow::Cow;

/// Paths Dapr always labels as they are.
const STATIC_PATHS: [&str; 4] = [
    "/dapr/config",
    "/dapr/metrics",
    "/dapr/subscribe",
    "/healthz",
];

/// Merges repeated slashes and ensures a leading one.
fn normalize(p: &str) -> Cow<'_, str> {
    if p.starts_with('/') && !p.contains("//") {
        return Cow::Borrowed(p);
    }
    let mut out = String::with_capacity(p.len() + 1);
    for c in std::iter::once('/').chain(p.chars()) {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The first `end` bytes of `path`, borrowed when `path` is.
fn prefix(path: Cow<'_, str>, end: usize) -> Cow<'_, str> {
    match path {
        Cow::Borrowed(p) => Cow::Borrowed(&p[..end]),
        Cow::Owned(mut p) => {
            p.truncate(end);
            Cow::Owned(p)
        }
    }
}

/// Dapr's low-cardinality label for a path: state and secret paths stop at the store,
/// actor ids become `{id}`, workflow instance ids `{instanceId}`.
pub fn legacy_label(raw: &str) -> Cow<'_, str> {
    if raw.is_empty() {
        return Cow::Borrowed(raw);
    }
    let path = normalize(raw);
    let p = &path[1..];
    let mut parts: [&str; 6] = [""; 6];
    let mut n = 0;
    for (i, part) in p.splitn(6, '/').enumerate() {
        parts[i] = part;
        n = i + 1;
    }
    if n < 3 {
        return path;
    }
    let joined = |parts: &[&str], lead: bool| {
        let mut s = String::with_capacity(p.len() + 8);
        if lead {
            s.push('/');
        }
        s.push_str(&parts.join("/"));
        Cow::Owned(s)
    };
    if parts[0] == "actors" {
        // The app-facing actor callback: Dapr joins these without the leading slash.
        parts[2] = "{id}";
        return joined(&parts[..n], false);
    }
    match parts[1] {
        "state" | "secrets" => {
            let end = 1 + parts[0].len() + 1 + parts[1].len() + 1 + parts[2].len();
            prefix(path, end)
        }
        "actors" => {
            if n < 5 {
                return path;
            }
            parts[3] = "{id}";
            joined(&parts[..5], true)
        }
        "workflows" => {
            if n < 4 {
                return path;
            }
            if n == 4 {
                parts[3] = "{instanceId}";
                return joined(&parts[..4], true);
            }
            if n == 5 && parts[4].starts_with("start") {
                let mut s = joined(&parts[..4], true).into_owned();
                s.push_str("/start");
                return Cow::Owned(s);
            }
            parts[3] = "{instanceId}";
            if n == 6 && parts[4] == "raiseEvent" && !parts[5].is_empty() {
                parts[5] = "{eventName}";
                return joined(&parts[..6], true);
            }
            joined(&parts[..5], true)
        }
        _ => path,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment<'a> {
    Literal(&'a str),
    /// `{name}`: one non-empty segment.
    One,
    /// `{name...}`: the rest of the path.
    Rest,
    /// `{$}`: the end of a path that ends in a slash.
    End,
}

impl Segment<'_> {
    /// How specific a segment is: literals beat wildcards, which beat the rest.
    fn rank(self) -> u8 {
        match self {
            Segment::Literal(_) => 3,
            Segment::End => 2,
            Segment::One => 1,
            Segment::Rest => 0,
        }
    }
}

/// One `pathMatching` entry.
#[derive(Debug)]
struct Pattern {
    text: String,
    /// A pattern ending in `/` matches the whole subtree below it.
    subtree: bool,
}

impl Pattern {
    fn segments(&self) -> impl Iterator<Item = Segment<'_>> {
        let body = self.text[1..].strip_suffix('/').unwrap_or(&self.text[1..]);
        body.split('/')
            .filter(|s| !(s.is_empty() && body.is_empty()))
            .map(|s| match s {
                "{$}" => Segment::End,
                s if s.starts_with('{') && s.ends_with("...}") => Segment::Rest,
                s if s.starts_with('{') && s.ends_with('}') => Segment::One,
                s => Segment::Literal(s),
            })
    }

    fn matches(&self, path: &str) -> bool {
        let mut rest = path[1..].split('/').peekable();
        for seg in self.segments() {
            match seg {
                Segment::Rest => return true,
                Segment::End => return rest.next() == Some("") && rest.next().is_none(),
                Segment::One => {
                    if rest.next().is_none_or(str::is_empty) {
                        return false;
                    }
                }
                Segment::Literal(l) => {
                    if rest.next() != Some(l) {
                        return false;
                    }
                }
            }
        }
        if self.subtree {
            rest.peek().is_some()
        } else {
            rest.next().is_none()
        }
    }

    /// Orders overlapping patterns: the more specific one compares greater.
    fn specificity(&self) -> (Vec<u8>, bool) {
        (self.segments().map(Segment::rank).collect(), !self.subtree)
    }
}

/// `spec.metric.http.pathMatching`, with Dapr's extra invoke variant of every pattern.
#[derive(Debug)]
pub struct PathMatcher {
    patterns: Vec<Pattern>,
    /// Without a root pattern, increased cardinality falls back to the path itself.
    raw_root: bool,
}

impl PathMatcher {
    fn new(paths: &[String], legacy: bool) -> Option<Self> {
        if paths.is_empty() {
            return None;
        }
        let mut texts: Vec<String> = Vec::with_capacity(paths.len() * 2);
        let mut root = false;
        for raw in paths {
            let p = normalize(raw).into_owned();
            root |= p == "/";
            if !p.starts_with("/v1.0/invoke/") {
                texts.push(format!("/v1.0/invoke/{{app_id}}/method{p}"));
            }
            texts.push(p);
        }
        if !root && legacy {
            texts.push("/".to_string());
        }
        texts.sort();
        texts.dedup();
        let mut patterns: Vec<Pattern> = texts
            .into_iter()
            .map(|text| Pattern {
                subtree: text.ends_with('/'),
                text,
            })
            .collect();
        patterns.sort_by_key(|p| std::cmp::Reverse(p.specificity()));
        Some(Self {
            patterns,
            raw_root: !root && legacy,
        })
    }

    /// The pattern `path` matches, the path itself for the fallback root, or empty.
    fn matching<'a>(&'a self, path: &'a str) -> Cow<'a, str> {
        let clean = normalize(path);
        match self.patterns.iter().find(|p| p.matches(&clean)) {
            Some(p) if p.text == "/" && self.raw_root => clean,
            Some(p) => Cow::Borrowed(p.text.as_str()),
            None => Cow::Borrowed(""),
        }
    }
}

/// The HTTP metrics' path labelling, as the Configuration sets it.
#[derive(Debug)]
pub struct PathLabels {
    legacy: bool,
    matcher: Option<PathMatcher>,
}

impl PathLabels {
    pub fn new(increased_cardinality: bool, path_matching: &[String]) -> Self {
        Self {
            legacy: increased_cardinality,
            matcher: PathMatcher::new(path_matching, increased_cardinality),
        }
    }

    /// The `path` label of a request to `raw`.
    pub fn label<'a>(&'a self, raw: &'a str) -> Cow<'a, str> {
        let Some(matcher) = &self.matcher else {
            if !self.legacy {
                return Cow::Borrowed("");
            }
            // Dapr's label is already cut down, and cutting again changes nothing.
            return legacy_label(raw);
        };
        let path = normalize(raw);
        if STATIC_PATHS.contains(&path.as_ref()) {
            return path;
        }
        let matched = matcher.matching(&path);
        if !matched.is_empty() && (!self.legacy || matched != path) {
            return Cow::Owned(matched.into_owned());
        }
        let cut = legacy_label(&path);
        if cut != path {
            let matched = matcher.matching(&cut);
            if !matched.is_empty() && matched != "/" {
                return Cow::Owned(matched.into_owned());
            }
        }
        if !self.legacy {
            return Cow::Borrowed("");
        }
        Cow::Owned(cut.into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_labels_cut_variable_parts() {
        assert_eq!(
            legacy_label("/v1.0/state/statestore/key1"),
            "/v1.0/state/statestore"
        );
        assert_eq!(
            legacy_label("/v1.0//secrets/vault/a/b"),
            "/v1.0/secrets/vault"
        );
        assert_eq!(
            legacy_label("/v1.0/actors/Demo/1/method/m"),
            "/v1.0/actors/Demo/{id}/method"
        );
        assert_eq!(
            legacy_label("/actors/Demo/1/method/m"),
            "actors/Demo/{id}/method/m"
        );
        assert_eq!(
            legacy_label("/v1.0-alpha1/workflows/dapr/abc"),
            "/v1.0-alpha1/workflows/dapr/{instanceId}"
        );
        assert_eq!(
            legacy_label("/v1.0-alpha1/workflows/dapr/wf/start"),
            "/v1.0-alpha1/workflows/dapr/wf/start"
        );
        assert_eq!(
            legacy_label("/v1.0-alpha1/workflows/dapr/abc/raiseEvent/ev"),
            "/v1.0-alpha1/workflows/dapr/{instanceId}/raiseEvent/{eventName}"
        );
        assert_eq!(
            legacy_label("/v1.0/invoke/app/method/orders/1"),
            "/v1.0/invoke/app/method/orders/1"
        );
        assert_eq!(legacy_label("/v1.0/healthz"), "/v1.0/healthz");
        assert!(matches!(
            legacy_label("/v1.0/state/s/k"),
            Cow::Borrowed("/v1.0/state/s")
        ));
    }

    #[test]
    fn low_cardinality_drops_the_path() {
        let labels = PathLabels::new(false, &[]);
        assert_eq!(labels.label("/v1.0/state/s/k"), "");
    }

    #[test]
    fn path_matching_names_the_pattern_and_its_invoke_variant() {
        let labels = PathLabels::new(false, &["/orders/{orderID}".to_string()]);
        assert_eq!(labels.label("/orders/123"), "/orders/{orderID}");
        assert_eq!(
            labels.label("/v1.0/invoke/shop/method/orders/9"),
            "/v1.0/invoke/{app_id}/method/orders/{orderID}"
        );
        assert_eq!(labels.label("/orders/1/items"), "");
        assert_eq!(labels.label("/v1.0/state/s/k"), "");
        assert_eq!(labels.label("/healthz"), "/healthz");
    }

    #[test]
    fn path_matching_with_increased_cardinality_falls_back_to_the_cut_path() {
        let labels = PathLabels::new(true, &["/orders/{orderID}".to_string()]);
        assert_eq!(labels.label("/orders/7"), "/orders/{orderID}");
        assert_eq!(labels.label("/v1.0/state/s/k"), "/v1.0/state/s");
        assert_eq!(labels.label("/v1.0/other"), "/v1.0/other");
    }

    #[test]
    fn more_specific_patterns_win() {
        let labels = PathLabels::new(
            false,
            &[
                "/items/".to_string(),
                "/items/{id}".to_string(),
                "/items/special".to_string(),
                "/files/{path...}".to_string(),
                "/".to_string(),
            ],
        );
        assert_eq!(labels.label("/items/special"), "/items/special");
        assert_eq!(labels.label("/items/3"), "/items/{id}");
        assert_eq!(labels.label("/items/3/x"), "/items/");
        assert_eq!(labels.label("/files/a/b/c"), "/files/{path...}");
        assert_eq!(labels.label("/elsewhere"), "/");
    }
}
