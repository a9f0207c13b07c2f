//! Bindings: output operations on outside systems (`/v1.0/bindings/{name}`,
//! `InvokeBinding`) and input events delivered to the app ([`inputs`]).

pub mod inputs;

use std::sync::Arc;

use components_core::bindings::{Binding, InvokeRequest, InvokeResponse};
use http::StatusCode;

use crate::errors::{Code, DaprError};
use crate::table::Table;

/// A loaded binding and what its metadata says about it.
pub struct BindingEntry {
    pub api: Arc<dyn Binding>,
    /// The app path input events go to (`route`, default the binding's name).
    pub route: String,
    /// `direction` names `input` (or is absent and the binding reads): the app is then
    /// not asked whether it wants the events.
    pub direction: Vec<String>,
}

/// The loaded bindings by component name.
#[derive(Default)]
pub struct BindingsBlock {
    bindings: Table<Arc<BindingEntry>>,
}

/// Dapr's one error for every failed output binding call.
pub fn invoke_error(name: &str, why: &str) -> DaprError {
    DaprError::new(
        "ERR_INVOKE_OUTPUT_BINDING",
        format!("error invoking output binding {name}: {why}"),
        StatusCode::INTERNAL_SERVER_ERROR,
        Code::Internal,
    )
}

impl BindingsBlock {
    pub fn upsert(&self, name: &str, entry: BindingEntry) {
        self.bindings.upsert(name, Arc::new(entry));
    }

    pub fn remove(&self, name: &str) -> bool {
        self.bindings.remove(name)
    }

    pub fn get(&self, name: &str) -> Option<Arc<BindingEntry>> {
        self.bindings.get(name)
    }

    /// Every loaded binding's name.
    pub fn names(&self) -> Vec<String> {
        self.bindings.load().keys().cloned().collect()
    }

    /// Runs one operation on an output binding, with Dapr's checks and messages.
    pub async fn invoke(
        &self,
        name: &str,
        req: InvokeRequest,
    ) -> Result<InvokeResponse, DaprError> {
        if req.operation.is_empty() {
            return Err(invoke_error(
                name,
                "operation field is missing from request",
            ));
        }
        let entry = self
            .get(name)
            .filter(|e| !e.api.operations().is_empty())
            .ok_or_else(|| invoke_error(name, &format!("couldn't find output binding {name}")))?;
        let ops = entry.api.operations();
        if !ops.contains(&req.operation) {
            return Err(invoke_error(
                name,
                &format!(
                    "binding {name} does not support operation {}. supported operations:{}",
                    req.operation,
                    ops.join(" ")
                ),
            ));
        }
        entry
            .api
            .invoke(req)
            .await
            .map_err(|e| invoke_error(name, &e.to_string()))
    }
}

#[cfg(test)]
mod tests;
