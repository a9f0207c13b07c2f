//! Conformance suites: one per component family. Each backend's tests run the suite of its
//! family against a real instance of the backend.

pub mod pubsub;
pub mod state;
