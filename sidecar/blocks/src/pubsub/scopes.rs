//! Which topics this app may publish to and subscribe on, from a pub/sub component's
//! `allowedTopics`, `protectedTopics`, `publishingScopes` and `subscriptionScopes`
//! metadata, read once when the component loads and decided as Dapr decides.

use components_core::Properties;

/// The topic rules of one pub/sub component for this app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicScopes {
    allowed: Vec<String>,
    protected: Vec<String>,
    publishing: Vec<String>,
    subscribing: Vec<String>,
}

fn push_unique(out: &mut Vec<String>, topic: &str) {
    if !out.iter().any(|t| t == topic) {
        out.push(topic.to_string());
    }
}

/// `topic1,topic2`, spaces ignored.
fn topics(props: &Properties, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(v) = props.get(name) {
        for t in v.replace(' ', "").split(',') {
            push_unique(&mut out, t);
        }
    }
    out
}

/// `app1=topic1,topic2;app2=topic3`: this app's topics. An app listed with nothing after
/// `=` gets the one empty topic, so it may use none.
fn scoped(props: &Properties, name: &str, app_id: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(v) = props.get(name) {
        for entry in v.replace(' ', "").split(';') {
            let Some((app, list)) = entry.split_once('=') else {
                continue;
            };
            if app != app_id {
                continue;
            }
            for t in list.split(',') {
                push_unique(&mut out, t);
            }
        }
    }
    out
}

impl TopicScopes {
    pub fn from_properties(props: &Properties, app_id: &str) -> Self {
        Self {
            allowed: topics(props, "allowedTopics"),
            protected: topics(props, "protectedTopics"),
            publishing: scoped(props, "publishingScopes", app_id),
            subscribing: scoped(props, "subscriptionScopes", app_id),
        }
    }

    fn allowed(&self, topic: &str, scoped: &[String]) -> bool {
        if !self.allowed.is_empty() && !self.allowed.iter().any(|t| t == topic) {
            return false;
        }
        let protected = self.protected.iter().any(|t| t == topic);
        if !protected && scoped.is_empty() {
            return true;
        }
        scoped.iter().any(|t| t == topic)
    }

    pub fn may_publish(&self, topic: &str) -> bool {
        self.allowed(topic, &self.publishing)
    }

    pub fn may_subscribe(&self, topic: &str) -> bool {
        self.allowed(topic, &self.subscribing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Properties {
        Properties::new(pairs.iter().map(|(k, v)| (*k, *v)))
    }

    #[test]
    fn no_rules_allow_everything() {
        let s = TopicScopes::from_properties(&props(&[]), "a");
        assert!(s.may_publish("x") && s.may_subscribe("x"));
    }

    #[test]
    fn allowed_topics_limit_everyone() {
        let s = TopicScopes::from_properties(&props(&[("allowedtopics", "x, y")]), "a");
        assert!(s.may_publish("x") && s.may_subscribe("y"));
        assert!(!s.may_publish("z") && !s.may_subscribe("z"));
    }

    #[test]
    fn scopes_limit_the_app_they_name() {
        let p = props(&[
            ("publishingScopes", "a=x,y;b=;c=z"),
            ("subscriptionScopes", "a=y"),
        ]);
        let a = TopicScopes::from_properties(&p, "a");
        assert!(a.may_publish("x") && a.may_publish("y") && !a.may_publish("z"));
        assert!(a.may_subscribe("y") && !a.may_subscribe("x"));
        let b = TopicScopes::from_properties(&p, "b");
        assert!(
            !b.may_publish("x"),
            "an app listed with no topics may publish none"
        );
        assert!(b.may_subscribe("x"), "b has no subscription scope");
        let other = TopicScopes::from_properties(&p, "other");
        assert!(other.may_publish("anything"));
    }

    #[test]
    fn protected_topics_need_a_scope() {
        let p = props(&[
            ("protectedTopics", "secret"),
            ("publishingScopes", "a=secret"),
        ]);
        let a = TopicScopes::from_properties(&p, "a");
        assert!(a.may_publish("secret"));
        assert!(!a.may_subscribe("secret"));
        assert!(a.may_subscribe("open"));
        let b = TopicScopes::from_properties(&p, "b");
        assert!(!b.may_publish("secret") && b.may_publish("open"));
    }
}
