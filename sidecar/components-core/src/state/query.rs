//! Dapr's state query language: a JSON filter tree (`EQ`, `NEQ`, `GT`, `GTE`, `LT`, `LTE`,
//! `IN`, `AND`, `OR`) over dotted paths into JSON values, with sorting and offset paging.
//! Parsed once here; stores either translate it (PostgreSQL) or evaluate it in-process.

use std::cmp::Ordering;

use bytes::Bytes;
use serde_json::Value;

use super::StateError;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Eq(String, Value),
    Neq(String, Value),
    Gt(String, Value),
    Gte(String, Value),
    Lt(String, Value),
    Lte(String, Value),
    In(String, Vec<Value>),
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub path: String,
    pub descending: bool,
}

/// Largest page a query may ask for, and the largest offset a token may carry; beyond
/// these a request is refused rather than allowed to overflow arithmetic or the backend.
pub const MAX_PAGE_LIMIT: usize = 100_000;
pub const MAX_OFFSET: usize = 1 << 40;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub filter: Option<Filter>,
    pub sort: Vec<SortKey>,
    /// Zero means "no limit".
    pub limit: usize,
    /// Offset into the sorted results, carried between pages as the token.
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub key: String,
    pub data: Bytes,
    pub etag: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryResponse {
    pub results: Vec<QueryResult>,
    /// Token for the next page; empty when this was the last one.
    pub token: String,
}

fn invalid(msg: impl Into<String>) -> StateError {
    StateError::InvalidRequest(msg.into())
}

impl Query {
    /// Parses the request body of the query API.
    pub fn parse(raw: &[u8]) -> Result<Self, StateError> {
        let doc: Value = serde_json::from_slice(raw)
            .map_err(|e| invalid(format!("failed to parse JSON query body: {e}")))?;
        let obj = doc
            .as_object()
            .ok_or_else(|| invalid("query must be a JSON object"))?;
        let filter = match obj.get("filter") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) if m.is_empty() => None,
            Some(f) => Some(parse_filter(f)?),
        };
        let mut sort = Vec::new();
        if let Some(s) = obj.get("sort") {
            let arr = s
                .as_array()
                .ok_or_else(|| invalid("\"sort\" must be an array"))?;
            for entry in arr {
                let path = entry
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("sort entry needs a \"key\""))?;
                let descending = match entry.get("order").and_then(Value::as_str) {
                    None => false,
                    Some(o) if o.eq_ignore_ascii_case("ASC") => false,
                    Some(o) if o.eq_ignore_ascii_case("DESC") => true,
                    Some(o) => return Err(invalid(format!("invalid sort order {o:?}"))),
                };
                sort.push(SortKey {
                    path: path.to_string(),
                    descending,
                });
            }
        }
        let (mut limit, mut offset) = (0, 0);
        if let Some(page) = obj.get("page") {
            if let Some(l) = page.get("limit") {
                let l = l
                    .as_u64()
                    .ok_or_else(|| invalid("page limit must be a non-negative integer"))?;
                limit = usize::try_from(l)
                    .ok()
                    .filter(|l| *l <= MAX_PAGE_LIMIT)
                    .ok_or_else(|| {
                        invalid(format!("page limit must be at most {MAX_PAGE_LIMIT}"))
                    })?;
            }
            if let Some(t) = page.get("token").and_then(Value::as_str)
                && !t.is_empty()
            {
                offset = t
                    .parse::<usize>()
                    .ok()
                    .filter(|o| *o <= MAX_OFFSET)
                    .ok_or_else(|| invalid(format!("invalid page token {t:?}")))?;
            }
        }
        Ok(Query {
            filter,
            sort,
            limit,
            offset,
        })
    }

    /// Evaluates the query over `(key, value, etag)` rows held in memory.
    pub fn run_in_memory<I>(&self, rows: I) -> QueryResponse
    where
        I: IntoIterator<Item = (String, Bytes, Option<String>)>,
    {
        let mut matched: Vec<(Value, QueryResult)> = rows
            .into_iter()
            .filter_map(|(key, data, etag)| {
                let doc: Value = serde_json::from_slice(&data).ok()?;
                let keep = self.filter.as_ref().is_none_or(|f| f.matches(&doc));
                keep.then_some((doc, QueryResult { key, data, etag }))
            })
            .collect();
        matched.sort_by(|(a, ra), (b, rb)| {
            for s in &self.sort {
                let ord = compare_opt(lookup(a, &s.path), lookup(b, &s.path));
                let ord = if s.descending { ord.reverse() } else { ord };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            ra.key.cmp(&rb.key)
        });
        let total = matched.len();
        let start = self.offset.min(total);
        let end = if self.limit == 0 {
            total
        } else {
            start.saturating_add(self.limit).min(total)
        };
        let results = matched.drain(start..end).map(|(_, r)| r).collect();
        let token = if self.limit > 0 && end < total {
            end.to_string()
        } else {
            String::new()
        };
        QueryResponse { results, token }
    }
}

fn parse_filter(v: &Value) -> Result<Filter, StateError> {
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("filter must be a JSON object"))?;
    if obj.len() != 1 {
        return Err(invalid("filter must have exactly one operator"));
    }
    let Some((op, arg)) = obj.iter().next() else {
        return Err(invalid("empty filter"));
    };
    let list = |arg: &Value| -> Result<Vec<Filter>, StateError> {
        let arr = arg
            .as_array()
            .ok_or_else(|| invalid(format!("{op} takes an array")))?;
        if arr.len() < 2 {
            return Err(invalid(format!("{op} needs at least two filters")));
        }
        arr.iter().map(parse_filter).collect()
    };
    let pair = |arg: &Value| -> Result<(String, Value), StateError> {
        let m = arg
            .as_object()
            .ok_or_else(|| invalid(format!("{op} takes an object")))?;
        match (m.len(), m.iter().next()) {
            (1, Some((k, v))) => Ok((k.clone(), v.clone())),
            _ => Err(invalid(format!("{op} takes exactly one key"))),
        }
    };
    Ok(match op.as_str() {
        "AND" => Filter::And(list(arg)?),
        "OR" => Filter::Or(list(arg)?),
        "EQ" => pair(arg).map(|(k, v)| Filter::Eq(k, v))?,
        "NEQ" => pair(arg).map(|(k, v)| Filter::Neq(k, v))?,
        "GT" => pair(arg).map(|(k, v)| Filter::Gt(k, v))?,
        "GTE" => pair(arg).map(|(k, v)| Filter::Gte(k, v))?,
        "LT" => pair(arg).map(|(k, v)| Filter::Lt(k, v))?,
        "LTE" => pair(arg).map(|(k, v)| Filter::Lte(k, v))?,
        "IN" => {
            let (k, v) = pair(arg)?;
            match v {
                Value::Array(items) => Filter::In(k, items),
                _ => return Err(invalid("IN takes an array of values")),
            }
        }
        other => return Err(invalid(format!("unsupported filter operator {other:?}"))),
    })
}

impl Filter {
    fn matches(&self, doc: &Value) -> bool {
        let cmp = |path: &str, want: &Value| lookup(doc, path).and_then(|got| compare(got, want));
        match self {
            Filter::Eq(p, v) => cmp(p, v) == Some(Ordering::Equal),
            Filter::Neq(p, v) => cmp(p, v) != Some(Ordering::Equal),
            Filter::Gt(p, v) => cmp(p, v) == Some(Ordering::Greater),
            Filter::Gte(p, v) => matches!(cmp(p, v), Some(Ordering::Greater | Ordering::Equal)),
            Filter::Lt(p, v) => cmp(p, v) == Some(Ordering::Less),
            Filter::Lte(p, v) => matches!(cmp(p, v), Some(Ordering::Less | Ordering::Equal)),
            Filter::In(p, vs) => vs.iter().any(|v| cmp(p, v) == Some(Ordering::Equal)),
            Filter::And(fs) => fs.iter().all(|f| f.matches(doc)),
            Filter::Or(fs) => fs.iter().any(|f| f.matches(doc)),
        }
    }
}

/// Follows a dotted path such as `person.org` into a JSON document.
pub fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |v, seg| v.get(seg))
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    }
}

fn compare_opt(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => compare(x, y).unwrap_or(Ordering::Equal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows() -> Vec<(String, Bytes, Option<String>)> {
        [
            (
                "a",
                json!({"state": "CA", "person": {"org": "Dev", "id": 3}}),
            ),
            (
                "b",
                json!({"state": "WA", "person": {"org": "Ops", "id": 1}}),
            ),
            (
                "c",
                json!({"state": "CA", "person": {"org": "Finance", "id": 2}}),
            ),
            (
                "d",
                json!({"state": "CA", "person": {"org": "Ops", "id": 4}}),
            ),
        ]
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                Bytes::from(v.to_string()),
                Some("1".to_string()),
            )
        })
        .chain([("raw".to_string(), Bytes::from_static(b"not json"), None)])
        .collect()
    }

    fn keys(resp: &QueryResponse) -> Vec<&str> {
        resp.results.iter().map(|r| r.key.as_str()).collect()
    }

    #[test]
    fn filters_sorts_and_pages() {
        let q = Query::parse(
            br#"{"filter":{"EQ":{"state":"CA"}},"sort":[{"key":"person.org","order":"DESC"}],"page":{"limit":2}}"#,
        )
        .expect("valid query");
        let first = q.run_in_memory(rows());
        assert_eq!(keys(&first), ["d", "c"]);
        assert_eq!(first.token, "2");
        let q2 = Query { offset: 2, ..q };
        let second = q2.run_in_memory(rows());
        assert_eq!(keys(&second), ["a"]);
        assert_eq!(second.token, "");
    }

    #[test]
    fn boolean_operators_and_ranges() {
        let q = Query::parse(
            br#"{"filter":{"OR":[{"IN":{"person.org":["Finance","Dev"]}},{"AND":[{"GT":{"person.id":1}},{"NEQ":{"state":"CA"}}]}]}}"#,
        )
        .expect("valid query");
        assert_eq!(keys(&q.run_in_memory(rows())), ["a", "c"]);
        let q = Query::parse(br#"{"filter":{"LTE":{"person.id":2}},"sort":[{"key":"person.id"}]}"#)
            .expect("valid query");
        assert_eq!(keys(&q.run_in_memory(rows())), ["b", "c"]);
    }

    #[test]
    fn rejects_malformed_queries() {
        for bad in [
            &b"not json"[..],
            br#"[]"#,
            br#"{"filter":{"EQ":{"a":1,"b":2}}}"#,
            br#"{"filter":{"LIKE":{"a":1}}}"#,
            br#"{"filter":{"AND":[{"EQ":{"a":1}}]}}"#,
            br#"{"filter":{"IN":{"a":1}}}"#,
            br#"{"sort":[{"key":"a","order":"UP"}]}"#,
            br#"{"page":{"limit":-1}}"#,
            br#"{"page":{"token":"x"}}"#,
            br#"{"page":{"limit":18446744073709551615,"token":"1"}}"#,
            br#"{"page":{"limit":100001}}"#,
            br#"{"page":{"token":"99999999999999999999999"}}"#,
        ] {
            assert!(
                Query::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
