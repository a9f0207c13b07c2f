//! Wire contracts we own, generated from the .proto files beside this crate: the
//! sidecar-to-sidecar `dapr.proto.internals.v1` service now, the control-plane services
//! (sentry, placement, operator) as they land, and the OTLP trace export the
//! sidecar speaks to a collector. Names and numbers are Dapr's so that a
//! mixed fleet interoperates. This crate holds types only, no behaviour.

/// `dapr.proto.internals.v1`: service invocation between sidecars.
pub mod internals {
    #[allow(clippy::all, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("dapr.proto.internals.v1");
    }
}

/// `dapr.proto.operator.v1`: the operator serving dapr.io resources to sidecars.
pub mod operator {
    #[allow(clippy::all, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("dapr.proto.operator.v1");
    }
}

/// `dapr.proto.sentry.v1`: the certificate authority.
pub mod sentry {
    #[allow(clippy::all, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("dapr.proto.sentry.v1");
    }
}

/// OTLP (`opentelemetry.proto.*`): the part of OpenTelemetry's protocol a trace exporter
/// sends, written from OTLP's published field names and numbers.
pub mod otlp {
    #[allow(clippy::all, missing_docs)]
    pub mod common {
        pub mod v1 {
            tonic::include_proto!("opentelemetry.proto.common.v1");
        }
    }
    #[allow(clippy::all, missing_docs)]
    pub mod resource {
        pub mod v1 {
            tonic::include_proto!("opentelemetry.proto.resource.v1");
        }
    }
    #[allow(clippy::all, missing_docs)]
    pub mod trace {
        pub mod v1 {
            tonic::include_proto!("opentelemetry.proto.trace.v1");
        }
    }
    #[allow(clippy::all, missing_docs)]
    pub mod collector {
        pub mod trace {
            pub mod v1 {
                tonic::include_proto!("opentelemetry.proto.collector.trace.v1");
            }
        }
    }
}
