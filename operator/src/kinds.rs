//! The `dapr.io` kinds the operator serves, addressed dynamically: the operator passes
//! objects through as the API server stores them, so every field a user wrote reaches the
//! sidecar unchanged, including ones this version does not model.

use kube::api::ApiResource;

#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub kind: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
}

pub const GROUP: &str = "dapr.io";

pub const COMPONENT: Kind = Kind {
    kind: "Component",
    version: "v1alpha1",
    plural: "components",
};
pub const CONFIGURATION: Kind = Kind {
    kind: "Configuration",
    version: "v1alpha1",
    plural: "configurations",
};
/// Served as v2alpha1, the version `ListSubscriptionsV2` promises.
pub const SUBSCRIPTION: Kind = Kind {
    kind: "Subscription",
    version: "v2alpha1",
    plural: "subscriptions",
};
pub const RESILIENCY: Kind = Kind {
    kind: "Resiliency",
    version: "v1alpha1",
    plural: "resiliencies",
};
pub const HTTP_ENDPOINT: Kind = Kind {
    kind: "HTTPEndpoint",
    version: "v1alpha1",
    plural: "httpendpoints",
};

impl Kind {
    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: GROUP.into(),
            version: self.version.into(),
            api_version: format!("{GROUP}/{}", self.version),
            kind: self.kind.into(),
            plural: self.plural.into(),
        }
    }
}
