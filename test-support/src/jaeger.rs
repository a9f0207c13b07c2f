//! A real trace collector for the tracing tests: Jaeger (built from its Go module by
//! `tests/tracing/build-jaeger.sh`, found through `JAEGER_BIN`), receiving OTLP over gRPC
//! and HTTP and Zipkin on free loopback ports, and queried through its HTTP API.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::{Process, free_ports};

/// A running Jaeger, killed when dropped.
pub struct Jaeger {
    _process: Process,
    pub otlp_grpc: u16,
    pub otlp_http: u16,
    pub zipkin: u16,
    pub query: u16,
}

/// One span as Jaeger's query API shows it.
#[derive(Debug, Clone)]
pub struct JaegerSpan {
    pub span_id: String,
    pub name: String,
    /// The `CHILD_OF` reference, when the span has a parent.
    pub parent: Option<String>,
    pub service: String,
    pub tags: BTreeMap<String, String>,
    /// How long the span lasted, in microseconds.
    pub duration_us: u64,
}

impl JaegerSpan {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

fn binary() -> PathBuf {
    let path = std::env::var_os("JAEGER_BIN").unwrap_or_else(|| {
        panic!("JAEGER_BIN is not set: build Jaeger with tests/tracing/build-jaeger.sh and export its path")
    });
    PathBuf::from(path)
}

impl Jaeger {
    /// Starts Jaeger with `tests/tracing/jaeger.yaml` and waits until it takes spans and
    /// answers queries.
    pub async fn start() -> Self {
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/tracing/jaeger.yaml");
        let [otlp_grpc, otlp_http, zipkin, query, query_grpc] = free_ports();
        let ports = [
            ("JAEGER_OTLP_GRPC_PORT", otlp_grpc.to_string()),
            ("JAEGER_OTLP_HTTP_PORT", otlp_http.to_string()),
            ("JAEGER_ZIPKIN_PORT", zipkin.to_string()),
            ("JAEGER_QUERY_PORT", query.to_string()),
            ("JAEGER_QUERY_GRPC_PORT", query_grpc.to_string()),
        ];
        let mut env: Vec<(&str, &str)> = ports.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // Jaeger's own telemetry would otherwise be exported to the default OTLP port.
        env.push(("OTEL_SDK_DISABLED", "true"));
        let mut process = Process::spawn(&binary(), &["--config", config], &env);
        for port in [otlp_grpc, otlp_http, zipkin, query] {
            process.wait_listening(port, Duration::from_secs(30)).await;
        }
        Self {
            _process: process,
            otlp_grpc,
            otlp_http,
            zipkin,
            query,
        }
    }

    /// The spans of one trace so far (none if Jaeger has not seen it).
    pub async fn trace(&self, trace_id: &str) -> Vec<JaegerSpan> {
        let url = format!("http://127.0.0.1:{}/api/traces/{trace_id}", self.query);
        let Ok(resp) = reqwest::get(&url).await else {
            return Vec::new();
        };
        let Ok(body) = resp.json::<Value>().await else {
            return Vec::new();
        };
        let Some(trace) = body["data"].as_array().and_then(|d| d.first()) else {
            return Vec::new();
        };
        let processes = &trace["processes"];
        trace["spans"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| JaegerSpan {
                span_id: s["spanID"].as_str().unwrap_or_default().to_string(),
                name: s["operationName"].as_str().unwrap_or_default().to_string(),
                parent: s["references"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|r| r["refType"] == "CHILD_OF")
                    .and_then(|r| r["spanID"].as_str())
                    .map(str::to_string),
                duration_us: s["duration"].as_u64().unwrap_or_default(),
                service: s["processID"]
                    .as_str()
                    .and_then(|p| processes[p]["serviceName"].as_str())
                    .unwrap_or_default()
                    .to_string(),
                tags: s["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        let value = match &t["value"] {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (t["key"].as_str().unwrap_or_default().to_string(), value)
                    })
                    .collect(),
            })
            .collect()
    }

    /// Waits until the trace has at least `count` spans, and returns them.
    pub async fn wait_for(&self, trace_id: &str, count: usize) -> Vec<JaegerSpan> {
        let started = std::time::Instant::now();
        loop {
            let spans = self.trace(trace_id).await;
            if spans.len() >= count {
                return spans;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "Jaeger has {} of {count} span(s) of trace {trace_id}: {spans:#?}",
                spans.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
