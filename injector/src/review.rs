//! One AdmissionReview in, one out, as Dapr's `/mutate` answers it (v1, and v1beta1,
//! whose shape is the same; the answer carries the version it was asked in):
//!
//! - anything but a Pod, a Pod without `dapr.io/enabled: "true"`, or a Pod created by a
//!   requester not allowed to get a sidecar is admitted unchanged;
//! - an allowed Pod is admitted with the JSON Patch of [`crate::patch`], or refused with
//!   the reason (an invalid app id);
//! - a body that is not an AdmissionReview is an error for the HTTP layer (400).
//!
//! Allowed requesters are the workload controllers' service accounts Dapr lists, any
//! member of `system:masters`, and the `namespace:name` patterns of
//! `ALLOWED_SERVICE_ACCOUNTS` and `ALLOWED_SERVICE_ACCOUNTS_PREFIX_NAMES` (`*` and `?`
//! wildcards, as Go's `path.Match`).

use base64::Engine;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use crate::container::InjectorSettings;
use crate::patch::{Outcome, build_with};

/// The controllers whose Pods get sidecars, as Dapr lists them (`namespace:name`).
pub const DEFAULT_ALLOWED: &[&str] = &[
    "kube-system:replicaset-controller",
    "kube-system:replication-controller",
    "kube-system:deployment-controller",
    "kube-system:cronjob-controller",
    "kube-system:job-controller",
    "kube-system:statefulset-controller",
    "kube-system:daemon-set-controller",
    "openshift-operator-lifecycle-manager:olm-operator-serviceaccount",
    "tekton-pipelines:tekton-pipelines-controller",
    "mirrord:mirrord-operator",
];

const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";
const SYSTEM_MASTERS: &str = "system:masters";

/// Why a review could not even be read.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("can't decode body: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("the AdmissionReview has no request")]
    NoRequest,
    #[error("invalid pattern {0:?}, must contain exactly one ':' separating namespace and name")]
    Pattern(String),
    #[error("invalid pattern {0:?}: only '*' and '?' wildcards are supported")]
    Wildcard(String),
}

/// Who may create Pods that get a sidecar.
#[derive(Debug, Clone)]
pub struct Requesters {
    patterns: Vec<(String, String)>,
}

impl Requesters {
    /// Dapr's list plus the comma-separated patterns of `ALLOWED_SERVICE_ACCOUNTS` and
    /// `ALLOWED_SERVICE_ACCOUNTS_PREFIX_NAMES`; a malformed pattern is refused at startup.
    pub fn new(allowed: &str, prefix_names: &str) -> Result<Self, ReviewError> {
        let mut patterns = Vec::new();
        let all = DEFAULT_ALLOWED
            .iter()
            .copied()
            .chain(allowed.split(','))
            .chain(prefix_names.split(','));
        for pattern in all.map(str::trim).filter(|p| !p.is_empty()) {
            let Some((ns, name)) = pattern.split_once(':').filter(|(_, n)| !n.contains(':')) else {
                return Err(ReviewError::Pattern(pattern.to_string()));
            };
            let (ns, name) = (ns.trim(), name.trim());
            if ns.is_empty() && name.is_empty() {
                return Err(ReviewError::Pattern(pattern.to_string()));
            }
            if pattern.contains(['[', '\\']) {
                return Err(ReviewError::Wildcard(pattern.to_string()));
            }
            patterns.push((ns.to_string(), name.to_string()));
        }
        Ok(Self { patterns })
    }

    /// Whether `username` (with its `groups`) may get a sidecar injected.
    pub fn allows(&self, username: &str, groups: &[String]) -> bool {
        if groups.iter().any(|g| g == SYSTEM_MASTERS) {
            return true;
        }
        let Some((ns, name)) = username
            .strip_prefix(SERVICE_ACCOUNT_PREFIX)
            .and_then(|rest| rest.split_once(':'))
        else {
            return false;
        };
        self.patterns
            .iter()
            .any(|(p_ns, p_name)| glob(p_ns, ns) && glob(p_name, name))
    }
}

/// Go's `path.Match` for `*` (any run of characters but `/`) and `?` (one character).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' && t[ti] != '/' || p[pi] == t[ti] && p[pi] != '*') {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star.filter(|(_, st)| t[*st] != '/') {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The answer to one review body.
pub fn review(
    body: &[u8],
    settings: &InjectorSettings,
    requesters: &Requesters,
) -> Result<Value, ReviewError> {
    review_with(body, settings, requesters, &[])
}

/// The namespace of a Pod asking for injected pluggable components, when `body` is one:
/// the server then lists that namespace's Components for [`review_with`].
pub fn wants_components(body: &[u8]) -> Option<String> {
    // Cheap test first: almost no Pod asks.
    let needle = b"dapr.io/inject-pluggable-components";
    if !body.windows(needle.len()).any(|w| w == needle) {
        return None;
    }
    let review: Value = serde_json::from_slice(body).ok()?;
    let request = review.get("request")?;
    let asks = request
        .pointer("/object/metadata/annotations/dapr.io~1inject-pluggable-components")
        .and_then(Value::as_str)
        .is_some_and(crate::annotations::is_truthy);
    asks.then(|| {
        request
            .get("namespace")
            .or_else(|| request.pointer("/object/metadata/namespace"))
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string()
    })
}

/// [`review`], with the Components of the Pod's namespace (JSON).
pub fn review_with(
    body: &[u8],
    settings: &InjectorSettings,
    requesters: &Requesters,
    components: &[Value],
) -> Result<Value, ReviewError> {
    let review: Value = serde_json::from_slice(body)?;
    let request = review.get("request").ok_or(ReviewError::NoRequest)?;
    let uid = request
        .get("uid")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    let answer = |response: Value| {
        json!({
            "apiVersion": review.get("apiVersion").cloned().unwrap_or(json!("admission.k8s.io/v1")),
            "kind": "AdmissionReview",
            "response": response,
        })
    };
    let allowed = || answer(json!({"uid": uid, "allowed": true}));
    if request.pointer("/kind/kind").and_then(Value::as_str) != Some("Pod") {
        return Ok(allowed());
    }
    let Some(object) = request.get("object") else {
        return Ok(allowed());
    };
    let pod: Pod = match serde_json::from_value(object.clone()) {
        Ok(p) => p,
        Err(e) => {
            return Ok(answer(json!({
                "uid": uid,
                "allowed": false,
                "status": {"message": format!("the Pod cannot be read: {e}")},
            })));
        }
    };
    let enabled = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("dapr.io/enabled"))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !enabled {
        return Ok(allowed());
    }
    let username = request
        .pointer("/userInfo/username")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let groups: Vec<String> = request
        .pointer("/userInfo/groups")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if !requesters.allows(username, &groups) {
        return Ok(answer(json!({
            "uid": uid,
            "allowed": true,
            "warnings": [format!(
                "no Dapr sidecar: {username:?} is not on the list of allowed controller accounts"
            )],
        })));
    }
    let namespace = request
        .get("namespace")
        .and_then(Value::as_str)
        .or(pod.metadata.namespace.as_deref())
        .unwrap_or("default");
    Ok(match build_with(&pod, namespace, settings, components) {
        Ok(Outcome::Untouched(_)) => allowed(),
        Ok(Outcome::Patched { patch, warnings }) => {
            let bytes = serde_json::to_vec(&patch)?;
            let mut response = json!({
                "uid": uid,
                "allowed": true,
                "patchType": "JSONPatch",
                "patch": base64::engine::general_purpose::STANDARD.encode(bytes),
            });
            if !warnings.is_empty() {
                response["warnings"] =
                    json!(warnings.iter().map(ToString::to_string).collect::<Vec<_>>());
            }
            answer(response)
        }
        Err(refusal) => answer(json!({
            "uid": uid,
            "allowed": false,
            "status": {"message": refusal.to_string(), "code": 400},
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(version: &str, kind: &str, user: &str, groups: &[&str], annotations: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": version,
            "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "kind": {"group": "", "version": "v1", "kind": kind},
                "namespace": "shop",
                "operation": "CREATE",
                "userInfo": {"username": user, "groups": groups},
                "object": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "web-1", "annotations": annotations},
                    "spec": {"containers": [{"name": "web", "image": "web"}]},
                },
            },
        }))
        .expect("json")
    }

    const RS: &str = "system:serviceaccount:kube-system:replicaset-controller";

    fn requesters() -> Requesters {
        Requesters::new("team:deployer", "ci-*:bot-?").expect("patterns")
    }

    fn decode_patch(resp: &Value) -> Vec<Value> {
        let b64 = resp["response"]["patch"].as_str().expect("patch");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64");
        serde_json::from_slice(&bytes).expect("patch json")
    }

    #[test]
    fn an_enabled_pod_from_a_controller_is_patched() {
        let resp = review(
            &body(
                "admission.k8s.io/v1",
                "Pod",
                RS,
                &[],
                json!({"dapr.io/enabled": "true", "dapr.io/app-id": "web"}),
            ),
            &InjectorSettings::default(),
            &requesters(),
        )
        .expect("review");
        assert_eq!(resp["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(resp["response"]["uid"], "u-1");
        assert_eq!(resp["response"]["allowed"], true);
        assert_eq!(resp["response"]["patchType"], "JSONPatch");
        let ops = decode_patch(&resp);
        assert!(
            ops.iter()
                .any(|op| op["path"] == "/spec/containers/-" && op["value"]["name"] == "daprd"),
            "{ops:#?}"
        );
    }

    #[test]
    fn v1beta1_is_answered_in_v1beta1() {
        let resp = review(
            &body(
                "admission.k8s.io/v1beta1",
                "Pod",
                RS,
                &[],
                json!({"dapr.io/enabled": "true"}),
            ),
            &InjectorSettings::default(),
            &requesters(),
        )
        .expect("review");
        assert_eq!(resp["apiVersion"], "admission.k8s.io/v1beta1");
        assert!(resp["response"]["patch"].is_string());
    }

    #[test]
    fn others_are_admitted_unchanged() {
        let s = InjectorSettings::default();
        let r = requesters();
        for b in [
            body(
                "admission.k8s.io/v1",
                "Service",
                RS,
                &[],
                json!({"dapr.io/enabled": "true"}),
            ),
            body("admission.k8s.io/v1", "Pod", RS, &[], json!({})),
            body(
                "admission.k8s.io/v1",
                "Pod",
                RS,
                &[],
                json!({"dapr.io/enabled": "yes"}),
            ),
            body(
                "admission.k8s.io/v1",
                "Pod",
                "alice",
                &["devs"],
                json!({"dapr.io/enabled": "true"}),
            ),
        ] {
            let resp = review(&b, &s, &r).expect("review");
            assert_eq!(resp["response"]["allowed"], true);
            assert!(resp["response"].get("patch").is_none(), "{resp}");
        }
    }

    #[test]
    fn allowed_requesters_are_daprs_and_the_configured_patterns() {
        let r = requesters();
        assert!(r.allows(RS, &[]));
        assert!(r.allows("anyone", &[SYSTEM_MASTERS.to_string()]));
        assert!(r.allows("system:serviceaccount:team:deployer", &[]));
        assert!(r.allows("system:serviceaccount:ci-main:bot-1", &[]));
        assert!(!r.allows("system:serviceaccount:ci-main:bot-12", &[]));
        assert!(!r.allows("system:serviceaccount:team:other", &[]));
        assert!(
            !r.allows("kube-system:replicaset-controller", &[]),
            "not a service account"
        );
        assert!(Requesters::new("no-colon", "").is_err());
        assert!(Requesters::new("a:b:c", "").is_err());
        assert!(Requesters::new(":", "").is_err());
    }

    #[test]
    fn globs_as_go_path_match() {
        assert!(glob("ci-*", "ci-main"));
        assert!(glob("*", ""));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "a/c"));
        assert!(!glob("a*", "a/b"));
        assert!(glob("*-bot", "x-y-bot"));
        assert!(!glob("bot", "bots"));
    }

    #[test]
    fn a_refused_pod_says_why_and_a_broken_body_is_an_error() {
        let resp = review(
            &body(
                "admission.k8s.io/v1",
                "Pod",
                RS,
                &[],
                json!({"dapr.io/enabled": "true", "dapr.io/app-id": "Bad_Id"}),
            ),
            &InjectorSettings::default(),
            &requesters(),
        )
        .expect("review");
        assert_eq!(resp["response"]["allowed"], false);
        assert!(
            resp["response"]["status"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("invalid app id(input: Bad_Id")),
            "{resp}"
        );
        assert!(review(b"{not json", &InjectorSettings::default(), &requesters()).is_err());
        assert!(matches!(
            review(b"{}", &InjectorSettings::default(), &requesters()),
            Err(ReviewError::NoRequest)
        ));
    }
}
