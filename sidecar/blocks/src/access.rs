//! Access control on incoming invocations, from the Configuration's `spec.accessControl`:
//! a caller (trust domain, namespace, app id — from its certificate under mTLS) may call
//! an operation (the method path) with an HTTP verb if the policy for that caller says so,
//! falling back to the policy's `defaultAction`, then the global one.

use crds::configuration::{AccessControlSpec, AppOperationAction};
use thiserror::Error;

use security::DEFAULT_TRUST_DOMAIN;

/// Who is calling, as far as this sidecar can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub trust_domain: String,
    pub namespace: String,
    pub app_id: String,
}

/// The policy refused `caller` this operation; the text is Dapr's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "access control policy has denied access to id: spiffe://{}/ns/{}/{} operation: {operation} verb: {verb}",
    .caller.trust_domain,
    .caller.namespace,
    .caller.app_id
)]
pub struct AccessDenied {
    pub caller: Caller,
    pub operation: String,
    pub verb: String,
}

#[derive(Debug, Clone)]
struct Operation {
    /// Path segments; `*` matches one segment, `**` any number.
    pattern: Vec<String>,
    /// Upper-case verbs; `*` matches any.
    verbs: Vec<String>,
    allow: bool,
}

#[derive(Debug, Clone)]
struct AppPolicy {
    app_id: String,
    namespace: String,
    trust_domain: String,
    default_allow: bool,
    operations: Vec<Operation>,
}

#[derive(Debug, Clone)]
pub struct AccessControl {
    default_allow: bool,
    policies: Vec<AppPolicy>,
}

fn allow(action: &str, otherwise: bool) -> bool {
    match action.trim().to_ascii_lowercase().as_str() {
        "allow" => true,
        "deny" => false,
        _ => otherwise,
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn matches(pattern: &[String], path: &[String]) -> bool {
    match (pattern.first().map(String::as_str), path.first()) {
        (None, None) => true,
        (Some("**"), _) => {
            matches(&pattern[1..], path) || (!path.is_empty() && matches(pattern, &path[1..]))
        }
        (Some("*"), Some(_)) => matches(&pattern[1..], &path[1..]),
        (Some(p), Some(s)) if p == s => matches(&pattern[1..], &path[1..]),
        _ => false,
    }
}

impl AccessControl {
    /// `None` when the Configuration has no access control: every caller is allowed.
    pub fn from_spec(spec: Option<&AccessControlSpec>) -> Option<Self> {
        let spec = spec?;
        let default_allow = allow(&spec.default_action, true);
        let policies = spec
            .policies
            .iter()
            .map(|p| AppPolicy {
                app_id: p.app_id.clone(),
                namespace: p.namespace.clone(),
                trust_domain: if p.trust_domain.is_empty() {
                    DEFAULT_TRUST_DOMAIN.to_string()
                } else {
                    p.trust_domain.clone()
                },
                default_allow: allow(&p.default_action, default_allow),
                operations: p.operations.iter().map(operation).collect(),
            })
            .collect();
        Some(Self {
            default_allow,
            policies,
        })
    }

    /// Whether `caller` may invoke `operation` (a method path) with `verb` (empty for
    /// gRPC calls, where verbs do not apply).
    pub fn allows(&self, caller: &Caller, operation: &str, verb: &str) -> bool {
        let Some(policy) = self.policies.iter().find(|p| {
            p.app_id == caller.app_id
                && p.trust_domain == caller.trust_domain
                && (p.namespace.is_empty() || p.namespace == caller.namespace)
        }) else {
            return self.default_allow;
        };
        let path = segments(operation);
        let verb = verb.to_ascii_uppercase();
        for op in &policy.operations {
            if !matches(&op.pattern, &path) {
                continue;
            }
            if verb.is_empty() || op.verbs.iter().any(|v| v == "*" || *v == verb) {
                return op.allow;
            }
        }
        policy.default_allow
    }
}

fn operation(o: &AppOperationAction) -> Operation {
    Operation {
        pattern: segments(&o.name),
        verbs: o.http_verb.iter().map(|v| v.to_ascii_uppercase()).collect(),
        allow: allow(&o.action, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crds::configuration::AppPolicySpec;

    fn caller(app: &str) -> Caller {
        Caller {
            trust_domain: "public".into(),
            namespace: "default".into(),
            app_id: app.into(),
        }
    }

    fn spec() -> AccessControlSpec {
        AccessControlSpec {
            default_action: "deny".into(),
            trust_domain: "public".into(),
            policies: vec![AppPolicySpec {
                app_id: "checkout".into(),
                default_action: "deny".into(),
                trust_domain: "public".into(),
                namespace: "default".into(),
                operations: vec![
                    AppOperationAction {
                        name: "/orders/*".into(),
                        http_verb: vec!["POST".into(), "GET".into()],
                        action: "allow".into(),
                    },
                    AppOperationAction {
                        name: "/admin/**".into(),
                        http_verb: vec!["*".into()],
                        action: "deny".into(),
                    },
                    AppOperationAction {
                        name: "/status".into(),
                        http_verb: vec!["*".into()],
                        action: "allow".into(),
                    },
                ],
            }],
        }
    }

    #[test]
    fn operations_verbs_and_defaults_decide() {
        let acl = AccessControl::from_spec(Some(&spec())).expect("acl");
        let c = caller("checkout");
        assert!(acl.allows(&c, "/orders/42", "POST"));
        assert!(acl.allows(&c, "orders/42", "get"));
        assert!(!acl.allows(&c, "/orders/42", "DELETE"), "verb not listed");
        assert!(
            !acl.allows(&c, "/orders/42/items", "GET"),
            "* is one segment"
        );
        assert!(!acl.allows(&c, "/admin/users/1", "GET"));
        assert!(acl.allows(&c, "/status", ""), "gRPC calls have no verb");
        assert!(!acl.allows(&c, "/other", "GET"), "the policy's default");
        assert!(
            !acl.allows(&caller("stranger"), "/status", "GET"),
            "the global default"
        );
        let mut elsewhere = caller("checkout");
        elsewhere.namespace = "other".into();
        assert!(
            !acl.allows(&elsewhere, "/status", "GET"),
            "namespace must match"
        );
        elsewhere = caller("checkout");
        elsewhere.trust_domain = "evil".into();
        assert!(
            !acl.allows(&elsewhere, "/status", "GET"),
            "trust domain must match"
        );
    }

    #[test]
    fn no_access_control_allows_everyone_and_allow_is_the_default() {
        assert!(AccessControl::from_spec(None).is_none());
        let open = AccessControl::from_spec(Some(&AccessControlSpec::default())).expect("acl");
        assert!(open.allows(&caller("anyone"), "/x", "GET"));
    }
}
