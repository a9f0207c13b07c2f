//! Component families: the traits building blocks program against, the properties a
//! component is configured with, the typed errors it reports, and one conformance suite
//! per family (behind the `testing` feature) that every backend must pass.
//!
//! Nothing here knows which API called a component or which backend implements it:
//! backends live in their own crates (`components-memory`, `components-redis`, ...) and
//! depend on this one, never the other way round.

pub mod bindings;
mod component;
mod error;
pub mod family;
pub mod nameresolution;
pub mod properties;
pub mod pubsub;
mod registry;
pub mod secretstores;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;

pub use component::Component;
pub use error::ComponentError;
pub use family::Family;
pub use properties::{Properties, PropertyError};
pub use registry::{Init, Live, Registry, ResolverInit};
