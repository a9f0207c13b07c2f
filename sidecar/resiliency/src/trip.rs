//! The `trip` expressions of circuit breakers (`consecutiveFailures > 5`, ...): CEL over the
//! breaker's counters. An expression is compiled once, when the policy is read, and
//! evaluated only when a call fails while the breaker is closed, as in Dapr, so a call that
//! succeeds never pays for it (a failure pays a few hundred nanoseconds).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use cel::common::ast::{Expr, IdedExpr, LiteralValue, operators};
use cel::common::types::CelInt;
use cel::common::value::CowVal;
use cel::context::VariableResolver;
use cel::{Context, Env, ParseErrors, Program, Value};
use thiserror::Error;

/// The breaker's counters an expression can read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub total_successes: u64,
    pub total_failures: u64,
    pub consecutive_successes: u64,
    pub consecutive_failures: u64,
}

/// The names Dapr binds the counters to, in the order [`Counters`] holds them.
const VARIABLES: [&str; 5] = [
    "requests",
    "totalSuccesses",
    "totalFailures",
    "consecutiveSuccesses",
    "consecutiveFailures",
];

/// One standard CEL environment for every expression: building one registers the whole
/// standard library, work worth doing once per process rather than per breaker.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// A compiled `trip` expression. Clones share the program (and its log-once flag).
#[derive(Clone)]
pub struct TripExpr(Arc<Compiled>);

struct Compiled {
    source: String,
    program: Program,
    /// Set by the first evaluation that gave no boolean, so that a bad expression is
    /// reported once rather than on every failed call.
    warned: AtomicBool,
}

/// Why a `trip` expression was refused when the policy was read.
#[derive(Debug, Error)]
pub enum TripError {
    /// The text is not CEL.
    #[error("invalid trip expression {expr:?}: {summary}")]
    Syntax {
        expr: String,
        /// The first syntax error on one line (the source has them all, with carets).
        summary: String,
        #[source]
        source: ParseErrors,
    },
    /// The expression names something other than the breaker's counters, so it could
    /// only fail when evaluated.
    #[error("invalid trip expression {expr:?}: unknown variable {name:?}")]
    UnknownVariable { expr: String, name: String },
    /// The expression is a number, a string, a list... and so can never be `true`.
    #[error("invalid trip expression {expr:?}: not a condition (it never evaluates to a boolean)")]
    NotCondition { expr: String },
}

impl TripExpr {
    /// Compiles `source`, refusing what could never trip the breaker: bad syntax, a name
    /// that is not a counter, a value that cannot be a boolean. (Dapr accepts the last two
    /// and then never trips; a breaker that silently never opens is worse than an error.)
    pub fn parse(source: &str) -> Result<Self, TripError> {
        let program = ENV.compile(source).map_err(|e| TripError::Syntax {
            expr: source.to_string(),
            summary: summary(&e),
            source: e,
        })?;
        let references = program.references();
        let mut unknown = references.variables();
        unknown.retain(|v| !VARIABLES.contains(v));
        unknown.sort_unstable();
        if let Some(name) = unknown.first() {
            return Err(TripError::UnknownVariable {
                expr: source.to_string(),
                name: (*name).to_string(),
            });
        }
        drop(references);
        if never_boolean(program.expression()) {
            return Err(TripError::NotCondition {
                expr: source.to_string(),
            });
        }
        Ok(Self(Arc::new(Compiled {
            source: source.to_string(),
            program,
            warned: AtomicBool::new(false),
        })))
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.0.source
    }

    /// Whether the breaker should open with these counts: only a boolean `true` opens it.
    /// Anything else (another type, or an error such as a division by zero) keeps it closed,
    /// as in Dapr, and the first such answer is logged.
    pub fn eval(&self, counts: &Counts) -> bool {
        let counters = Counters::from(counts);
        let mut ctx = Context::with_env(Arc::clone(&ENV));
        ctx.set_variable_resolver(&counters);
        match self.0.program.execute(&ctx) {
            Ok(Value::Bool(trip)) => trip,
            other => {
                if !self.0.warned.swap(true, Ordering::Relaxed) {
                    let expr = self.as_str();
                    match other {
                        Ok(value) => tracing::warn!(
                            expr,
                            "circuit breaker trip expression gave {value:?}, not a boolean: \
                             the breaker does not open"
                        ),
                        Err(e) => tracing::warn!(
                            expr,
                            "circuit breaker trip expression failed: {e}: the breaker does not open"
                        ),
                    }
                }
                false
            }
        }
    }
}

impl fmt::Debug for TripExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TripExpr").field(&self.0.source).finish()
    }
}

impl PartialEq for TripExpr {
    fn eq(&self, other: &Self) -> bool {
        self.0.source == other.0.source
    }
}

/// The first error of `errors` on one line, for messages that name the policy around it.
fn summary(errors: &ParseErrors) -> String {
    match errors.errors.first() {
        Some(e) => format!("{} (column {})", e.msg, e.pos.1),
        None => "not a CEL expression".to_string(),
    }
}

/// Whether `e`, from its shape alone, can only be something other than a boolean: a
/// counter, a literal other than `true`/`false`, arithmetic, a list or map, or a choice
/// between such. Anything else (a comparison, a function) is left to evaluation.
fn never_boolean(e: &IdedExpr) -> bool {
    match &e.expr {
        // Every name an expression may use is an int counter.
        Expr::Ident(_) => true,
        Expr::Literal(LiteralValue::Boolean(_)) => false,
        Expr::Literal(_) | Expr::List(_) | Expr::Map(_) | Expr::Struct(_) => true,
        Expr::Call(call) => match call.func_name.as_str() {
            operators::ADD
            | operators::SUBSTRACT
            | operators::MULTIPLY
            | operators::DIVIDE
            | operators::MODULO
            | operators::NEGATE => true,
            operators::CONDITIONAL => call.args.iter().skip(1).all(never_boolean),
            _ => false,
        },
        _ => false,
    }
}

/// The counters as CEL `int`s (Dapr binds them as int64), handed to the program by name
/// without building a map for each evaluation.
struct Counters([CelInt; 5]);

impl From<&Counts> for Counters {
    fn from(c: &Counts) -> Self {
        let int = |v: u64| CelInt::from(i64::try_from(v).unwrap_or(i64::MAX));
        Self([
            int(c.requests),
            int(c.total_successes),
            int(c.total_failures),
            int(c.consecutive_successes),
            int(c.consecutive_failures),
        ])
    }
}

impl VariableResolver for Counters {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let i = VARIABLES.iter().position(|v| *v == variable)?;
        Some(CowVal::Borrowed(&self.0[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(consecutive_failures: u64, requests: u64) -> Counts {
        Counts {
            consecutive_failures,
            requests,
            ..Counts::default()
        }
    }

    #[test]
    fn parses_and_evaluates_dapr_trip_expressions() {
        let e = TripExpr::parse("consecutiveFailures > 5").expect("parses");
        assert!(!e.eval(&counts(5, 5)));
        assert!(e.eval(&counts(6, 6)));
        let e = TripExpr::parse("consecutiveFailures >= 2 && requests > 3 || totalFailures == 100")
            .expect("parses");
        assert!(!e.eval(&counts(2, 3)));
        assert!(e.eval(&counts(2, 4)));
        assert!(e.eval(&Counts {
            total_failures: 100,
            ..Counts::default()
        }));
        let e = TripExpr::parse("(consecutiveFailures > 1 || requests < 0) && requests != 9")
            .expect("parses");
        assert!(e.eval(&counts(2, 1)));
        assert!(!e.eval(&counts(2, 9)));
    }

    #[test]
    fn refuses_what_it_cannot_evaluate() {
        for bad in [
            "",
            "consecutiveFailures",
            "consecutiveFailures >",
            "x > 1",
            "consecutiveFailures > 1 &&",
            "consecutiveFailures = 1",
            "(consecutiveFailures > 1",
            "consecutiveFailures > 99999999999999999999",
        ] {
            assert!(TripExpr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn evaluates_what_full_cel_allows() {
        let e = TripExpr::parse(
            "consecutiveFailures >= 3 || (requests > 10 && totalFailures * 2 > requests)",
        )
        .expect("parses");
        let c = |consecutive_failures, requests, total_failures| Counts {
            consecutive_failures,
            requests,
            total_failures,
            ..Counts::default()
        };
        assert!(e.eval(&c(3, 3, 3)), "three in a row");
        assert!(!e.eval(&c(1, 10, 9)), "too few requests to judge the rate");
        assert!(e.eval(&c(1, 11, 6)), "more than half of 11 failed");
        assert!(!e.eval(&c(1, 12, 6)), "exactly half is not more than half");

        let e = TripExpr::parse("!(consecutiveSuccesses > 0) && totalFailures % 2 == 1")
            .expect("parses");
        assert!(e.eval(&Counts {
            total_failures: 3,
            ..Counts::default()
        }));
        assert!(!e.eval(&Counts {
            total_failures: 3,
            consecutive_successes: 1,
            ..Counts::default()
        }));
    }

    #[test]
    fn binds_every_counter_under_daprs_name() {
        let e = TripExpr::parse(
            "requests == 1 && totalSuccesses == 2 && totalFailures == 3 \
             && consecutiveSuccesses == 4 && consecutiveFailures == 5",
        )
        .expect("parses");
        assert!(e.eval(&Counts {
            requests: 1,
            total_successes: 2,
            total_failures: 3,
            consecutive_successes: 4,
            consecutive_failures: 5,
        }));
        let e = TripExpr::parse("requests == 9223372036854775807").expect("parses");
        assert!(
            e.eval(&counts(0, u64::MAX)),
            "counts beyond int64 saturate rather than wrap"
        );
    }

    #[test]
    fn an_unknown_variable_is_refused_by_name() {
        let err = TripExpr::parse("consecutiveFailures > 1 && failures > 2").expect_err("refused");
        assert!(
            matches!(&err, TripError::UnknownVariable { name, .. } if name == "failures"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "invalid trip expression \"consecutiveFailures > 1 && failures > 2\": unknown variable \"failures\""
        );
    }

    #[test]
    fn refuses_values_that_are_never_conditions() {
        for bad in [
            "requests + 1",
            "'open'",
            "requests > 1 ? 1 : 2",
            "[true]",
            "-requests",
        ] {
            assert!(
                matches!(TripExpr::parse(bad), Err(TripError::NotCondition { .. })),
                "{bad}"
            );
        }
        assert!(
            TripExpr::parse("true").is_ok(),
            "a constant condition is one"
        );
    }

    #[test]
    fn syntax_errors_keep_the_parser_report_as_source() {
        let err = TripExpr::parse("consecutiveFailures >").expect_err("refused");
        let text = err.to_string();
        assert!(
            text.starts_with("invalid trip expression \"consecutiveFailures >\": ")
                && !text.contains('\n'),
            "{text}"
        );
        let source = std::error::Error::source(&err).expect("the parser's errors");
        assert!(source.to_string().contains("<input>:1:"), "{source}");
    }

    #[test]
    fn what_is_not_a_boolean_when_evaluated_does_not_trip() {
        let e = TripExpr::parse("totalFailures / requests > 0").expect("parses");
        assert!(
            !e.eval(&counts(1, 0)),
            "division by zero: an error, no trip"
        );
        assert!(e.eval(&Counts {
            requests: 2,
            total_failures: 2,
            ..Counts::default()
        }));
        let e = TripExpr::parse("requests > 2 ? 1 : true").expect("parses");
        assert!(e.eval(&counts(0, 1)));
        assert!(!e.eval(&counts(0, 3)), "an int: no trip");
        assert!(!e.eval(&counts(0, 3)), "and again (logged once)");
    }
}
