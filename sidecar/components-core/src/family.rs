//! Component families: which part of a `spec.type` names the family, and what the runtime
//! needs to know about each one to host its components generically.

use std::sync::Arc;

use crate::Component;

/// A family of components (`state`, `secretstores`, ...): the trait its backends implement
/// and how the metadata API describes one. Each family declares a marker type implementing
/// this next to its trait; the registry and the runtime need nothing else to host it.
pub trait Family: 'static {
    /// The `spec.type` prefix before the first dot, as Dapr spells it.
    const NAME: &'static str;
    /// The trait object building blocks use, e.g. `dyn StateStore`.
    type Api: ?Sized + Send + Sync + 'static;

    /// Capability names for the metadata API, as Dapr spells them.
    fn capabilities(api: &Self::Api) -> Vec<String>;

    /// The same component seen through its lifecycle, so it can be closed.
    fn lifecycle(api: Arc<Self::Api>) -> Arc<dyn Component>;
}

/// Dapr's component categories with the noun its "couldn't find ..." errors use. A type
/// whose prefix is not here is refused as an "incorrect type", as Dapr does; one whose
/// family is here but whose backend is not registered is "not found".
const CATEGORIES: &[(&str, &str)] = &[
    ("bindings", "binding"),
    ("configuration", "configuration store"),
    ("conversation", "conversation"),
    ("crypto", "crypto provider"),
    ("lock", "lock store"),
    ("middleware", "HTTP middleware"),
    ("pubsub", "message bus"),
    ("secretstores", "secret store"),
    ("state", "state store"),
];

/// The category of a component type (`state.redis` → `state`), if Dapr knows it.
pub fn category_of(type_: &str) -> Option<&'static str> {
    let (prefix, _) = type_.split_once('.')?;
    CATEGORIES
        .iter()
        .find(|(name, _)| *name == prefix)
        .map(|(name, _)| *name)
}

/// How Dapr's errors name a component of `category` ("state store", "message bus", ...).
pub fn noun_of(category: &str) -> &'static str {
    CATEGORIES
        .iter()
        .find(|(name, _)| *name == category)
        .map_or("component", |(_, noun)| *noun)
}

/// Dapr treats an empty version, `v0` and `v1` as the initial version of a component.
pub fn normalise_version(version: &str) -> &str {
    match version {
        "" | "v0" => "v1",
        v => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_are_the_prefix_before_the_first_dot() {
        assert_eq!(category_of("state.redis"), Some("state"));
        assert_eq!(category_of("middleware.http.oauth2"), Some("middleware"));
        assert_eq!(category_of("secretstores.local.file"), Some("secretstores"));
        // Name resolution and workflows are not components in Dapr.
        assert_eq!(category_of("nameresolution.mdns"), None);
        assert_eq!(category_of("workflow.dapr"), None);
        assert_eq!(category_of("nosuch.thing"), None);
        assert_eq!(category_of("state"), None);
        // Case-sensitive, as Dapr's prefix match.
        assert_eq!(category_of("State.redis"), None);
    }

    #[test]
    fn nouns_and_versions_follow_dapr() {
        assert_eq!(noun_of("pubsub"), "message bus");
        assert_eq!(noun_of("state"), "state store");
        assert_eq!(normalise_version(""), "v1");
        assert_eq!(normalise_version("v0"), "v1");
        assert_eq!(normalise_version("v2"), "v2");
    }
}
