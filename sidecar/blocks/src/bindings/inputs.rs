//! Input bindings: once the app is ready, each binding that reads is started if the app
//! takes its events (`direction: input`, or the app answers `OPTIONS /<route>` with 2xx
//! or 405 over HTTP, or lists it in `ListInputBindings` over gRPC). Each event is
//! `POST /<route>` (or `OnBindingEvent`); a non-2xx answer fails the event back to the
//! binding. The app's answer may write state (`storeName`, `state`) and send `data` on to
//! output bindings (`to`, `concurrency`), as Dapr documents.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use channel::{AppChannel, AppRequest};
use components_core::bindings::{InvokeRequest, ReadEvent, ReadHandler, Reading};
use dapr::dapr::proto::runtime::v1::BindingEventRequest;
use dapr::dapr::proto::runtime::v1::binding_event_response::BindingEventConcurrency;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::{BindingEntry, BindingsBlock};
use crate::state::{Options, SaveItem, StateBlock};

/// The app's answer to an event, as Dapr documents it.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct AppAnswer {
    store_name: String,
    state: Vec<StateJson>,
    to: Vec<String>,
    data: serde_json::Value,
    concurrency: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StateJson {
    key: String,
    value: serde_json::Value,
    metadata: HashMap<String, String>,
}

#[derive(Default)]
struct State {
    active: bool,
    running: HashMap<String, Box<dyn Reading>>,
    /// What a gRPC app said it takes, asked once.
    grpc_list: Option<Vec<String>>,
}

/// Keeps the running input bindings in line with the loaded ones.
pub struct Inputs {
    bindings: Arc<BindingsBlock>,
    state_block: Arc<StateBlock>,
    app: Option<Arc<AppChannel>>,
    state: Mutex<State>,
}

impl Inputs {
    pub fn new(
        bindings: Arc<BindingsBlock>,
        state_block: Arc<StateBlock>,
        app: Option<Arc<AppChannel>>,
    ) -> Self {
        Self {
            bindings,
            state_block,
            app,
            state: Mutex::default(),
        }
    }

    /// Starts every input binding the app takes: called once the app is ready.
    pub async fn start_app(self: &Arc<Self>) {
        let mut st = self.state.lock().await;
        if self.app.is_none() {
            return;
        }
        st.active = true;
        for name in self.bindings.names() {
            self.restart(&mut st, &name).await;
        }
    }

    /// A binding was added, replaced or removed.
    pub async fn reload(self: &Arc<Self>, name: &str) {
        let mut st = self.state.lock().await;
        if st.active {
            self.restart(&mut st, name).await;
        } else if let Some(r) = st.running.remove(name) {
            r.stop().await;
        }
    }

    /// Stops every input binding, at shutdown.
    pub async fn stop_all(&self) {
        let mut st = self.state.lock().await;
        st.active = false;
        let running: Vec<Box<dyn Reading>> = st.running.drain().map(|(_, r)| r).collect();
        futures::future::join_all(running.iter().map(|r| r.stop())).await;
    }

    async fn restart(self: &Arc<Self>, st: &mut State, name: &str) {
        if let Some(r) = st.running.remove(name) {
            r.stop().await;
        }
        let Some(entry) = self.bindings.get(name).filter(|e| e.api.is_input()) else {
            return;
        };
        let Some(app) = self.app.clone() else { return };
        if !self.app_takes(st, &app, name, &entry).await {
            tracing::info!("app has not subscribed to binding {name}.");
            return;
        }
        let me = self.clone();
        let binding = name.to_string();
        let route = entry.route.clone();
        let handler: ReadHandler = Arc::new(move |event: ReadEvent| {
            let (me, app, binding, route) =
                (me.clone(), app.clone(), binding.clone(), route.clone());
            Box::pin(async move { me.deliver(&app, &binding, &route, event).await })
        });
        match entry.api.read(handler).await {
            Ok(reading) => {
                tracing::info!("input binding {name} is reading");
                st.running.insert(name.to_string(), reading);
            }
            Err(e) => tracing::error!("error reading from input binding {name}: {e}"),
        }
    }

    async fn app_takes(
        &self,
        st: &mut State,
        app: &AppChannel,
        name: &str,
        entry: &BindingEntry,
    ) -> bool {
        if entry.direction.iter().any(|d| d == "input") {
            return true;
        }
        match app.grpc().await {
            Ok(Some(grpc)) => {
                if st.grpc_list.is_none() {
                    st.grpc_list = Some(
                        grpc.list_input_bindings()
                            .await
                            .map(|r| r.bindings)
                            .unwrap_or_default(),
                    );
                }
                st.grpc_list
                    .as_ref()
                    .is_some_and(|l| l.iter().any(|b| b == name))
            }
            Ok(None) => {
                let probe = AppRequest {
                    method: http::Method::OPTIONS,
                    path: entry.route.trim_start_matches('/').to_string(),
                    query: String::new(),
                    headers: json_headers(&HashMap::new()),
                    body: Bytes::new(),
                    data_type: String::new(),
                };
                match app.invoke(probe).await {
                    Ok(r) => r.status.is_success() || r.status == StatusCode::METHOD_NOT_ALLOWED,
                    Err(e) => {
                        tracing::warn!(
                            "could not invoke OPTIONS method on input binding subscription endpoint {:?}: {e}",
                            entry.route
                        );
                        false
                    }
                }
            }
            Err(e) => {
                tracing::warn!("input binding {name}: {e}");
                false
            }
        }
    }

    async fn deliver(
        &self,
        app: &AppChannel,
        name: &str,
        route: &str,
        event: ReadEvent,
    ) -> Result<Bytes, String> {
        let headers = json_headers(&event.metadata);
        let grpc = app
            .grpc()
            .await
            .map_err(|e| format!("error invoking app: {e}"))?;
        if let Some(grpc) = grpc {
            let resp = grpc
                .on_binding_event(
                    BindingEventRequest {
                        name: name.to_string(),
                        data: event.data.to_vec(),
                        metadata: event.metadata,
                    },
                    &headers,
                )
                .await
                .map_err(|s| format!("error invoking app: {}", s.message))?;
            drop(grpc);
            let answer = AppAnswer {
                store_name: resp.store_name,
                state: resp
                    .states
                    .into_iter()
                    .map(|s| StateJson {
                        key: s.key,
                        value: serde_json::from_slice(&s.value).unwrap_or_else(|_| {
                            serde_json::Value::String(
                                String::from_utf8_lossy(&s.value).into_owned(),
                            )
                        }),
                        metadata: s.metadata,
                    })
                    .collect(),
                to: resp.to,
                data: serde_json::from_slice(&resp.data).unwrap_or(serde_json::Value::Null),
                concurrency: if resp.concurrency == BindingEventConcurrency::Parallel as i32 {
                    "parallel".into()
                } else {
                    "sequential".into()
                },
            };
            self.on_answer(answer).await;
            return Ok(Bytes::from(resp.data));
        }
        drop(grpc);
        let resp = app
            .invoke(AppRequest {
                method: http::Method::POST,
                path: route.trim_start_matches('/').to_string(),
                query: String::new(),
                headers,
                body: event.data,
                data_type: String::new(),
            })
            .await
            .map_err(|e| format!("error invoking app: {e}"))?;
        if !resp.status.is_success() {
            return Err(format!(
                "fails to send binding event to http app channel, status code: {} body: {}",
                resp.status.as_u16(),
                String::from_utf8_lossy(&resp.body)
            ));
        }
        if let Ok(answer) = serde_json::from_slice::<AppAnswer>(&resp.body) {
            self.on_answer(answer).await;
        }
        Ok(resp.body)
    }

    /// Carries out what the app's answer asks: state writes, then output bindings.
    async fn on_answer(&self, answer: AppAnswer) {
        if !answer.store_name.is_empty() && !answer.state.is_empty() {
            let items = answer
                .state
                .into_iter()
                .map(|s| SaveItem {
                    key: s.key,
                    value: Bytes::from(serde_json::to_vec(&s.value).unwrap_or_default()),
                    is_json: true,
                    etag: None,
                    options: Ok(Options::default()),
                    metadata: s.metadata,
                })
                .collect();
            if let Err(e) = self.state_block.save(&answer.store_name, items).await {
                tracing::error!("error saving state from app response: {e}");
            }
        }
        if answer.to.is_empty() {
            return;
        }
        let data = Bytes::from(serde_json::to_vec(&answer.data).unwrap_or_default());
        let send = |to: String| {
            let data = data.clone();
            async move {
                let req = InvokeRequest {
                    operation: "create".into(),
                    data,
                    metadata: HashMap::new(),
                };
                if let Err(e) = self.bindings.invoke(&to, req).await {
                    tracing::error!("error sending data to output binding {to}: {e}");
                }
            }
        };
        if answer.concurrency == "parallel" {
            futures::future::join_all(answer.to.into_iter().map(send)).await;
        } else {
            for to in answer.to {
                send(to).await;
            }
        }
    }
}

/// The event's metadata as headers, with Dapr's JSON content type.
fn json_headers(metadata: &HashMap<String, String>) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(metadata.len() + 1);
    for (k, v) in metadata {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.insert(name, value);
        }
    }
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers
}
