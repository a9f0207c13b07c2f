//! Prometheus metrics with Dapr's names (`dapr_http_server_request_count`, ...), served on
//! `--metrics-port`. Series are atomics looked up under a read lock, so recording a request
//! costs no allocation once its label combination has been seen.

mod render;
mod series;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use series::Series;

/// gRPC methods get a series of their own only up to this many, so a client inventing
/// method names cannot grow memory without bound.
const MAX_GRPC_METHODS: usize = 256;

#[derive(Debug)]
pub struct Metrics {
    app_id: String,
    http: RwLock<HashMap<(&'static str, u16), Arc<Series>>>,
    grpc: RwLock<HashMap<Box<str>, Arc<[Series; 17]>>>,
    components_loaded: std::sync::atomic::AtomicU64,
}

/// HTTP methods as label values without allocating.
fn method_label(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::PATCH => "PATCH",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

impl Metrics {
    pub fn new(app_id: &str) -> Self {
        Self {
            app_id: app_id.to_string(),
            http: RwLock::default(),
            grpc: RwLock::default(),
            components_loaded: Default::default(),
        }
    }

    pub fn component_loaded(&self) {
        self.components_loaded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records one served HTTP request.
    pub fn http_request(&self, method: &http::Method, status: u16, elapsed: Duration) {
        let key = (method_label(method), status);
        let found = self
            .http
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let series = match found {
            Some(s) => s,
            None => self
                .http
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key)
                .or_default()
                .clone(),
        };
        series.observe(elapsed);
    }

    /// Records one completed gRPC call; `path` is `/package.Service/Method`.
    pub fn grpc_call(&self, path: &str, code: u8, elapsed: Duration) {
        let method = path.trim_start_matches('/');
        let found = self
            .grpc
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(method)
            .cloned();
        let methods = match found {
            Some(m) => m,
            None => {
                let mut map = self.grpc.write().unwrap_or_else(|e| e.into_inner());
                let name = if map.len() < MAX_GRPC_METHODS {
                    method
                } else {
                    "other"
                };
                map.entry(name.into())
                    .or_insert_with(|| Arc::new(Default::default()))
                    .clone()
            }
        };
        methods[usize::from(code.min(16))].observe(elapsed);
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        render::render(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_daprs_metric_names_and_labels() {
        let m = Metrics::new("app1");
        m.http_request(&http::Method::GET, 200, Duration::from_micros(1500));
        m.http_request(&http::Method::GET, 200, Duration::from_millis(30));
        m.http_request(&http::Method::POST, 400, Duration::from_millis(1));
        m.grpc_call(
            "/dapr.proto.runtime.v1.Dapr/GetState",
            0,
            Duration::from_millis(2),
        );
        m.component_loaded();
        let text = m.render();
        assert!(
            text.contains(
                r#"dapr_http_server_request_count{app_id="app1",method="GET",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"dapr_http_server_request_count{app_id="app1",method="POST",status="400"} 1"#
        ));
        assert!(text.contains(r#"dapr_http_server_latency_bucket{app_id="app1",method="GET",status="200",le="2"} 1"#), "{text}");
        assert!(text.contains(r#"dapr_http_server_latency_bucket{app_id="app1",method="GET",status="200",le="+Inf"} 2"#));
        assert!(text.contains(
            r#"dapr_grpc_io_server_completed_rpcs{app_id="app1",grpc_server_method="dapr.proto.runtime.v1.Dapr/GetState",grpc_server_status="OK"} 1"#
        ), "{text}");
        assert!(text.contains(r#"dapr_runtime_component_loaded{app_id="app1"} 1"#));
        assert!(text.contains("# TYPE dapr_http_server_latency histogram"));
    }

    #[test]
    fn grpc_method_names_are_bounded() {
        let m = Metrics::new("a");
        for i in 0..(MAX_GRPC_METHODS + 50) {
            m.grpc_call(&format!("/x/M{i}"), 2, Duration::from_millis(1));
        }
        assert!(m.grpc.read().expect("lock").len() <= MAX_GRPC_METHODS + 1);
    }
}
