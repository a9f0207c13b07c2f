//! The `trip` expressions of circuit breakers (`consecutiveFailures > 5`, ...): the part of
//! CEL Dapr's breakers use — comparisons of the breaker's counters with integers, joined by
//! `&&` and `||`, with parentheses.

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

#[derive(Debug, Clone, PartialEq)]
pub enum TripExpr {
    Compare(Var, Cmp, i64),
    And(Box<TripExpr>, Box<TripExpr>),
    Or(Box<TripExpr>, Box<TripExpr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    Requests,
    TotalSuccesses,
    TotalFailures,
    ConsecutiveSuccesses,
    ConsecutiveFailures,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid trip expression {expr:?}: {reason}")]
pub struct TripError {
    expr: String,
    reason: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Int(i64),
    Op(&'static str),
    Open,
    Close,
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Token::Ident(s[start..i].to_string()));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push(Token::Int(
                s[start..i]
                    .parse()
                    .map_err(|_| "number too large".to_string())?,
            ));
        } else if c == b'(' {
            out.push(Token::Open);
            i += 1;
        } else if c == b')' {
            out.push(Token::Close);
            i += 1;
        } else {
            let two = s.get(i..i + 2).unwrap_or("");
            let op = match two {
                ">=" | "<=" | "==" | "!=" | "&&" | "||" => {
                    i += 2;
                    match two {
                        ">=" => ">=",
                        "<=" => "<=",
                        "==" => "==",
                        "!=" => "!=",
                        "&&" => "&&",
                        _ => "||",
                    }
                }
                _ if c == b'>' => {
                    i += 1;
                    ">"
                }
                _ if c == b'<' => {
                    i += 1;
                    "<"
                }
                _ => return Err(format!("unexpected character {:?}", c as char)),
            };
            out.push(Token::Op(op));
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<TripExpr, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Op("||")) {
            self.pos += 1;
            left = TripExpr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<TripExpr, String> {
        let mut left = self.atom()?;
        while self.peek() == Some(&Token::Op("&&")) {
            self.pos += 1;
            left = TripExpr::And(Box::new(left), Box::new(self.atom()?));
        }
        Ok(left)
    }

    fn atom(&mut self) -> Result<TripExpr, String> {
        match self.next() {
            Some(Token::Open) => {
                let e = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(e),
                    _ => Err("missing ')'".into()),
                }
            }
            Some(Token::Ident(name)) => {
                let var = match name.as_str() {
                    "requests" => Var::Requests,
                    "totalSuccesses" => Var::TotalSuccesses,
                    "totalFailures" => Var::TotalFailures,
                    "consecutiveSuccesses" => Var::ConsecutiveSuccesses,
                    "consecutiveFailures" => Var::ConsecutiveFailures,
                    other => return Err(format!("unknown variable {other:?}")),
                };
                let cmp = match self.next() {
                    Some(Token::Op(">")) => Cmp::Gt,
                    Some(Token::Op(">=")) => Cmp::Ge,
                    Some(Token::Op("<")) => Cmp::Lt,
                    Some(Token::Op("<=")) => Cmp::Le,
                    Some(Token::Op("==")) => Cmp::Eq,
                    Some(Token::Op("!=")) => Cmp::Ne,
                    _ => return Err(format!("expected a comparison after {name}")),
                };
                match self.next() {
                    Some(Token::Int(n)) => Ok(TripExpr::Compare(var, cmp, n)),
                    _ => Err("expected an integer".into()),
                }
            }
            _ => Err("expected a variable or '('".into()),
        }
    }
}

impl TripExpr {
    pub fn parse(s: &str) -> Result<Self, TripError> {
        let fail = |reason: String| TripError {
            expr: s.to_string(),
            reason,
        };
        let tokens = tokenize(s).map_err(fail)?;
        let mut p = Parser { tokens, pos: 0 };
        let e = p.or().map_err(fail)?;
        if p.pos != p.tokens.len() {
            return Err(fail("unexpected trailing input".into()));
        }
        Ok(e)
    }

    pub fn eval(&self, c: &Counts) -> bool {
        match self {
            TripExpr::And(a, b) => a.eval(c) && b.eval(c),
            TripExpr::Or(a, b) => a.eval(c) || b.eval(c),
            TripExpr::Compare(var, cmp, n) => {
                let v = match var {
                    Var::Requests => c.requests,
                    Var::TotalSuccesses => c.total_successes,
                    Var::TotalFailures => c.total_failures,
                    Var::ConsecutiveSuccesses => c.consecutive_successes,
                    Var::ConsecutiveFailures => c.consecutive_failures,
                };
                let v = i64::try_from(v).unwrap_or(i64::MAX);
                match cmp {
                    Cmp::Gt => v > *n,
                    Cmp::Ge => v >= *n,
                    Cmp::Lt => v < *n,
                    Cmp::Le => v <= *n,
                    Cmp::Eq => v == *n,
                    Cmp::Ne => v != *n,
                }
            }
        }
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
}
