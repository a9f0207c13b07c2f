//! Prometheus metrics with Dapr's names and labels (`dapr_http_server_request_count`,
//! ...), served on `--metrics-port`. Series are atomics looked up under a read lock, so
//! recording a request costs no allocation once its label combination has been seen.

mod path_label;
mod process;
mod render;
mod series;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use series::{DEFAULT_BUCKETS_MS, Series};

/// gRPC methods get a series of their own only up to this many, so a client inventing
/// method names cannot grow memory without bound.
const MAX_GRPC_METHODS: usize = 256;

/// Distinct HTTP `path` labels kept; later paths are counted under the empty path, the
/// label Dapr uses when it keeps no path. Full invoke paths (Dapr's default) are as many
/// as callers make up.
const MAX_HTTP_PATHS: usize = 1024;

/// The metric settings of the Configuration (`spec.metric`), with Dapr's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// `enabled`: record the HTTP and gRPC API series (the server itself follows
    /// `--enable-metrics`).
    pub api: bool,
    /// `http.increasedCardinality`: label HTTP series with the (cut) request path.
    pub increased_cardinality: bool,
    /// `http.pathMatching`: the route patterns HTTP paths are labelled with.
    pub path_matching: Vec<String>,
    /// `http.excludeVerbs`: leave the method label empty.
    pub exclude_verbs: bool,
    /// `latencyDistributionBuckets`, in milliseconds.
    pub latency_buckets_ms: Vec<f64>,
    /// `recordErrorCodes`: count errors by Dapr error code.
    pub record_error_codes: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            api: true,
            increased_cardinality: true,
            path_matching: Vec::new(),
            exclude_verbs: false,
            latency_buckets_ms: DEFAULT_BUCKETS_MS.to_vec(),
            record_error_codes: false,
        }
    }
}

type HttpSeries = HashMap<Box<str>, HashMap<(&'static str, u16), Arc<Series>>>;

#[derive(Debug)]
pub struct Metrics {
    app_id: String,
    bounds: Box<[f64]>,
    paths: path_label::PathLabels,
    exclude_verbs: bool,
    record_error_codes: bool,
    api: bool,
    http: RwLock<HttpSeries>,
    grpc: RwLock<HashMap<Box<str>, Arc<[Series]>>>,
    errors: RwLock<HashMap<(&'static str, &'static str), Arc<AtomicU64>>>,
    components_loaded: AtomicU64,
}

/// HTTP methods as Dapr labels them, without allocating.
fn method_label(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::PATCH => "PATCH",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::CONNECT => "CONNECT",
        http::Method::TRACE => "TRACE",
        _ => "UNKNOWN",
    }
}

/// Reads a map, recovering from a poisoned lock (counters stay usable after a panic).
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    pub fn new(app_id: &str, options: Options) -> Self {
        let mut bounds = options.latency_buckets_ms;
        bounds.retain(|b| b.is_finite());
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        Self {
            app_id: app_id.to_string(),
            bounds: bounds.into(),
            paths: path_label::PathLabels::new(
                options.increased_cardinality,
                &options.path_matching,
            ),
            exclude_verbs: options.exclude_verbs,
            record_error_codes: options.record_error_codes,
            api: options.api,
            http: RwLock::default(),
            grpc: RwLock::default(),
            errors: RwLock::default(),
            components_loaded: AtomicU64::new(0),
        }
    }

    pub fn component_loaded(&self) {
        self.components_loaded.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether API errors should be handed to [`Metrics::error_code`].
    pub fn records_error_codes(&self) -> bool {
        self.record_error_codes
    }

    /// Records one served HTTP request to `path` (the request's path, unlabelled).
    pub fn http_request(&self, method: &http::Method, path: &str, status: u16, elapsed: Duration) {
        if !self.api {
            return;
        }
        let method = if self.exclude_verbs {
            ""
        } else {
            method_label(method)
        };
        let label = self.paths.label(path);
        let key = (method, status);
        let found = read(&self.http)
            .get(label.as_ref())
            .and_then(|by_status| by_status.get(&key))
            .cloned();
        let series = match found {
            Some(s) => s,
            None => {
                let mut map = write(&self.http);
                let label: &str = if map.len() < MAX_HTTP_PATHS || map.contains_key(label.as_ref())
                {
                    label.as_ref()
                } else {
                    ""
                };
                let bounds = self.bounds.len();
                map.entry(label.into())
                    .or_default()
                    .entry(key)
                    .or_insert_with(|| Arc::new(Series::new(bounds)))
                    .clone()
            }
        };
        series.observe(&self.bounds, elapsed);
    }

    /// Records one completed gRPC call; `path` is `/package.Service/Method`, which is
    /// the `grpc_server_method` label as it is.
    pub fn grpc_call(&self, path: &str, code: u8, elapsed: Duration) {
        if !self.api {
            return;
        }
        let found = read(&self.grpc).get(path).cloned();
        let methods = match found {
            Some(m) => m,
            None => {
                let mut map = write(&self.grpc);
                let name = if map.len() < MAX_GRPC_METHODS {
                    path
                } else {
                    "other"
                };
                let bounds = self.bounds.len();
                map.entry(name.into())
                    .or_insert_with(|| (0..17).map(|_| Series::new(bounds)).collect())
                    .clone()
            }
        };
        methods[usize::from(code.min(16))].observe(&self.bounds, elapsed);
    }

    /// Counts one API error by its Dapr code (`ERR_STATE_STORE_NOT_FOUND`) and category
    /// (`state`), when the Configuration asks for it.
    pub fn error_code(&self, code: &'static str, category: &'static str) {
        if !self.record_error_codes {
            return;
        }
        let key = (code, category);
        let found = read(&self.errors).get(&key).cloned();
        let counter = match found {
            Some(c) => c,
            None => write(&self.errors).entry(key).or_default().clone(),
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        render::render(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(options: Options) -> Metrics {
        Metrics::new("app1", options)
    }

    #[test]
    fn renders_daprs_metric_names_and_labels() {
        let m = metrics(Options::default());
        m.http_request(
            &http::Method::GET,
            "/v1.0/state/store/k1",
            200,
            Duration::from_micros(1500),
        );
        m.http_request(
            &http::Method::GET,
            "/v1.0/state/store/k2",
            200,
            Duration::from_millis(30),
        );
        m.http_request(
            &http::Method::POST,
            "/v1.0/state/store",
            400,
            Duration::from_millis(1),
        );
        m.grpc_call(
            "/dapr.proto.runtime.v1.Dapr/GetState",
            0,
            Duration::from_millis(2),
        );
        m.component_loaded();
        let text = m.render();
        assert!(
            text.contains(
                r#"dapr_http_server_request_count{app_id="app1",method="GET",path="/v1.0/state/store",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"dapr_http_server_request_count{app_id="app1",method="POST",path="/v1.0/state/store",status="400"} 1"#
        ));
        assert!(text.contains(r#"dapr_http_server_latency_bucket{app_id="app1",method="GET",path="/v1.0/state/store",status="200",le="2"} 1"#), "{text}");
        assert!(text.contains(r#"dapr_http_server_latency_bucket{app_id="app1",method="GET",path="/v1.0/state/store",status="200",le="100000"} 2"#), "{text}");
        assert!(text.contains(r#"dapr_http_server_latency_bucket{app_id="app1",method="GET",path="/v1.0/state/store",status="200",le="+Inf"} 2"#));
        assert!(text.contains(
            r#"dapr_grpc_io_server_completed_rpcs{app_id="app1",grpc_server_method="/dapr.proto.runtime.v1.Dapr/GetState",grpc_server_status="OK"} 1"#
        ), "{text}");
        assert!(text.contains(r#"dapr_runtime_component_loaded{app_id="app1"} 1"#));
        assert!(text.contains("# TYPE dapr_http_server_latency histogram"));
        assert!(!text.contains("dapr_error_code_total{"), "{text}");
    }

    #[test]
    fn configured_buckets_replace_the_default_ones() {
        let m = metrics(Options {
            latency_buckets_ms: vec![50.0, 5.0],
            ..Options::default()
        });
        m.http_request(
            &http::Method::GET,
            "/v1.0/healthz",
            204,
            Duration::from_millis(7),
        );
        let text = m.render();
        let buckets: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("dapr_http_server_latency_bucket"))
            .collect();
        assert_eq!(buckets.len(), 3, "{text}");
        assert!(buckets[0].ends_with(r#"le="5"} 0"#), "{text}");
        assert!(buckets[1].ends_with(r#"le="50"} 1"#), "{text}");
    }

    #[test]
    fn verbs_can_be_excluded_and_odd_ones_are_unknown() {
        let m = metrics(Options {
            exclude_verbs: true,
            increased_cardinality: false,
            ..Options::default()
        });
        m.http_request(&http::Method::GET, "/v1.0/healthz", 204, Duration::ZERO);
        assert!(m.render().contains(
            r#"dapr_http_server_request_count{app_id="app1",method="",path="",status="204"} 1"#
        ));
        let m = metrics(Options::default());
        let odd = http::Method::from_bytes(b"PURGE").expect("method");
        m.http_request(&odd, "/x", 404, Duration::ZERO);
        assert!(
            m.render()
                .contains(r#"method="UNKNOWN",path="/x",status="404"} 1"#)
        );
    }

    #[test]
    fn error_codes_are_counted_only_when_asked() {
        let off = metrics(Options::default());
        off.error_code("ERR_STATE_STORE_NOT_FOUND", "state");
        assert!(!off.render().contains("dapr_error_code_total{"));
        let on = metrics(Options {
            record_error_codes: true,
            ..Options::default()
        });
        on.error_code("ERR_STATE_STORE_NOT_FOUND", "state");
        on.error_code("ERR_STATE_STORE_NOT_FOUND", "state");
        assert!(on.render().contains(
            r#"dapr_error_code_total{app_id="app1",category="state",error_code="ERR_STATE_STORE_NOT_FOUND"} 2"#
        ));
    }

    #[test]
    fn label_sets_are_bounded() {
        let m = metrics(Options::default());
        for i in 0..(MAX_GRPC_METHODS + 50) {
            m.grpc_call(&format!("/x/M{i}"), 2, Duration::from_millis(1));
        }
        assert!(read(&m.grpc).len() <= MAX_GRPC_METHODS + 1);
        for i in 0..(MAX_HTTP_PATHS + 50) {
            m.http_request(
                &http::Method::GET,
                &format!("/v1.0/invoke/a/method/{i}"),
                200,
                Duration::ZERO,
            );
        }
        assert!(read(&m.http).len() <= MAX_HTTP_PATHS + 1);
    }
}
