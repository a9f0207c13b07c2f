//! Routing rules: which app path an event goes to. Each rule is a CEL `match` over the
//! CloudEvent (bound as `event`) and a path; the first rule that matches wins, a rule
//! without a match (the default route) matches everything, and an event no rule takes is
//! not delivered at all.

use std::sync::{Arc, LazyLock};

use cel::{Context, Env, Program, Value};
use serde_json::{Map, Value as Json};
use thiserror::Error;

/// One environment for every rule: building it registers the standard library.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// Why a rule was refused or could not choose a route.
#[derive(Debug, Error)]
pub enum RuleError {
    #[error("invalid match expression {expr:?}: {reason}")]
    Syntax { expr: String, reason: String },
    #[error("error evaluating match expression {expr:?}: {reason}")]
    Eval { expr: String, reason: String },
    #[error("the result of match expression {0} was not a boolean")]
    NotBoolean(String),
}

/// One rule: a compiled match (none for the default route) and the path it routes to.
#[derive(Clone)]
pub struct Rule {
    matcher: Option<Arc<(String, Program)>>,
    pub path: String,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("match", &self.match_expr())
            .field("path", &self.path)
            .finish()
    }
}

impl Rule {
    /// A rule from its `match` text (blank for a default route) and path, compiled once.
    pub fn new(match_expr: &str, path: &str) -> Result<Self, RuleError> {
        let expr = match_expr.trim();
        let matcher = if expr.is_empty() {
            None
        } else {
            let program = ENV.compile(expr).map_err(|e| RuleError::Syntax {
                expr: expr.to_string(),
                reason: e.to_string().lines().next().unwrap_or_default().to_string(),
            })?;
            Some(Arc::new((expr.to_string(), program)))
        };
        Ok(Self {
            matcher,
            path: path.to_string(),
        })
    }

    /// The route everything goes to.
    pub fn default_route(path: &str) -> Self {
        Self {
            matcher: None,
            path: path.to_string(),
        }
    }

    /// The `match` text; empty for a default route.
    pub fn match_expr(&self) -> &str {
        self.matcher.as_ref().map(|m| m.0.as_str()).unwrap_or("")
    }

    fn matches(&self, event: &Value) -> Result<bool, RuleError> {
        let Some(m) = &self.matcher else {
            return Ok(true);
        };
        let mut ctx = Context::with_env(Arc::clone(&ENV));
        ctx.add_variable_from_value("event", event.clone());
        match m.1.execute(&ctx) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(_) => Err(RuleError::NotBoolean(m.0.clone())),
            Err(e) => Err(RuleError::Eval {
                expr: m.0.clone(),
                reason: e.to_string(),
            }),
        }
    }
}

/// The path of the first rule that takes `event`, or `None` when no rule does.
pub fn route<'r>(
    rules: &'r [Rule],
    event: &Map<String, Json>,
) -> Result<Option<&'r str>, RuleError> {
    if rules.iter().all(|r| r.matcher.is_none()) {
        return Ok(rules.first().map(|r| r.path.as_str()));
    }
    let value = cel::to_value(event).map_err(|e| RuleError::Eval {
        expr: String::new(),
        reason: e.to_string(),
    })?;
    for rule in rules {
        if rule.matches(&value)? {
            return Ok(Some(&rule.path));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(v: Json) -> Map<String, Json> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn first_matching_rule_wins_and_default_takes_the_rest() {
        let rules = vec![
            Rule::new("event.type == \"widget\"", "widgets").unwrap(),
            Rule::new("event.data.size > 10 && event.type == \"gadget\"", "big").unwrap(),
            Rule::default_route("other"),
        ];
        let e = event(json!({"type": "widget", "data": {"size": 1}}));
        assert_eq!(route(&rules, &e).unwrap(), Some("widgets"));
        let e = event(json!({"type": "gadget", "data": {"size": 11}}));
        assert_eq!(route(&rules, &e).unwrap(), Some("big"));
        let e = event(json!({"type": "gadget", "data": {"size": 2}}));
        assert_eq!(route(&rules, &e).unwrap(), Some("other"));
    }

    #[test]
    fn no_rule_matching_means_no_route() {
        let rules = vec![Rule::new("event.type == \"a\"", "a").unwrap()];
        let e = event(json!({"type": "b"}));
        assert_eq!(route(&rules, &e).unwrap(), None);
        assert_eq!(route(&[], &e).unwrap(), None);
    }

    #[test]
    fn bad_expressions_are_refused_and_non_booleans_are_errors() {
        assert!(matches!(
            Rule::new("event.type ==", "x"),
            Err(RuleError::Syntax { .. })
        ));
        let rules = vec![Rule::new("event.type", "x").unwrap()];
        let e = event(json!({"type": "b"}));
        assert!(matches!(route(&rules, &e), Err(RuleError::NotBoolean(_))));
        let rules = vec![Rule::new("event.missing == 1", "x").unwrap()];
        assert!(matches!(route(&rules, &e), Err(RuleError::Eval { .. })));
    }
}
