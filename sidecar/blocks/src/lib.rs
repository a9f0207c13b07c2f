//! Building blocks: one module per Dapr API area. Each takes neutral request values from
//! a front door, resolves the component it needs, and returns values or a [`DaprError`]
//! that the front door encodes. No HTTP or gRPC types in here.
//!
//! [`DaprError`]: crate::errors::DaprError

pub mod access;
pub mod bindings;
mod code;
pub mod errors;
pub mod health;
pub mod invoke;
pub mod invoke_stream;
pub mod metadata;
pub mod outbox;
pub mod protostruct;
pub mod pubsub;
pub mod secrets;
pub mod state;
mod table;
