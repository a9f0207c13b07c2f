//! The bindings contract: an output binding runs operations on an outside system
//! (`create`, `get`, `exec`, ...); an input binding hands the runtime events from one
//! (a cron tick, a queue message) and hears back the app's answer. One component may be
//! both; it says which by what it implements.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use thiserror::Error;

use crate::{Component, Family};

/// Why a binding could not do what was asked.
#[derive(Debug, Error)]
pub enum BindingError {
    /// The binding does not read events or run operations at all.
    #[error("not supported by this binding")]
    NotSupported,
    /// The request is unusable (a missing field, bad metadata); the message says why.
    #[error("{0}")]
    BadRequest(String),
    /// The outside system refused or failed.
    #[error("{0}")]
    Backend(String),
}

/// One operation on an output binding.
#[derive(Debug, Clone, Default)]
pub struct InvokeRequest {
    pub operation: String,
    pub data: Bytes,
    pub metadata: HashMap<String, String>,
}

/// What an operation returned: data and metadata, both possibly empty.
#[derive(Debug, Clone, Default)]
pub struct InvokeResponse {
    pub data: Bytes,
    pub metadata: HashMap<String, String>,
    pub content_type: Option<String>,
}

/// One event an input binding read.
#[derive(Debug, Clone, Default)]
pub struct ReadEvent {
    pub data: Bytes,
    pub metadata: HashMap<String, String>,
}

/// The app's answer to an event: its response body, or why it failed (the binding may
/// then retry or give the event back, as its backend allows).
pub type ReadOutcome = Pin<Box<dyn Future<Output = Result<Bytes, String>> + Send>>;

/// Hands one event to the app.
pub type ReadHandler = Arc<dyn Fn(ReadEvent) -> ReadOutcome + Send + Sync>;

/// A running input binding; [`Reading::stop`] ends it once events in flight finish.
#[async_trait]
pub trait Reading: Send + Sync {
    async fn stop(&self);
}

/// A binding backend.
#[async_trait]
pub trait Binding: Component {
    /// The operations it runs as an output binding; empty when it is input only.
    fn operations(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether it reads events as an input binding.
    fn is_input(&self) -> bool {
        false
    }

    /// Runs one operation (one of [`Binding::operations`]).
    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse, BindingError> {
        let _ = request;
        Err(BindingError::NotSupported)
    }

    /// Starts reading events into `handler`.
    async fn read(&self, handler: ReadHandler) -> Result<Box<dyn Reading>, BindingError> {
        let _ = handler;
        Err(BindingError::NotSupported)
    }
}

/// The `bindings` family.
pub struct Bindings;

impl Family for Bindings {
    const NAME: &'static str = "bindings";
    type Api = dyn Binding;

    fn capabilities(api: &Self::Api) -> Vec<String> {
        let mut caps = Vec::new();
        if api.is_input() {
            caps.push("INPUT_BINDING".to_string());
        }
        if !api.operations().is_empty() {
            caps.push("OUTPUT_BINDING".to_string());
        }
        caps
    }

    fn lifecycle(api: Arc<Self::Api>) -> Arc<dyn Component> {
        api
    }
}
