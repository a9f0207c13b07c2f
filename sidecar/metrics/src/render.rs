use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::Metrics;
use super::series::{BUCKETS_MS, Series};

/// gRPC status names as grpc-go labels them.
const GRPC_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn histogram(out: &mut String, name: &str, labels: &str, s: &Series) {
    let mut cumulative = 0;
    for (i, bound) in BUCKETS_MS.iter().enumerate() {
        cumulative += s.buckets[i].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
    }
    cumulative += s.buckets[BUCKETS_MS.len()].load(Ordering::Relaxed);
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
    let sum_ms = s.sum_ns.load(Ordering::Relaxed) as f64 / 1e6;
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum_ms}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
}

pub fn render(m: &Metrics) -> String {
    let app = escape(&m.app_id);
    let mut out = String::with_capacity(4096);
    let http: Vec<_> = {
        let map = m.http.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = map.iter().map(|(k, s)| (*k, s.clone())).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    };
    out.push_str(
        "# HELP dapr_http_server_request_count Count of HTTP requests processed by the server.\n",
    );
    out.push_str("# TYPE dapr_http_server_request_count counter\n");
    for ((method, status), s) in &http {
        let n = s.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "dapr_http_server_request_count{{app_id=\"{app}\",method=\"{method}\",status=\"{status}\"}} {n}"
        );
    }
    out.push_str(
        "# HELP dapr_http_server_latency HTTP request end-to-end latency in the server.\n",
    );
    out.push_str("# TYPE dapr_http_server_latency histogram\n");
    for ((method, status), s) in &http {
        let labels = format!("app_id=\"{app}\",method=\"{method}\",status=\"{status}\"");
        histogram(&mut out, "dapr_http_server_latency", &labels, s);
    }
    let grpc: Vec<_> = {
        let map = m.grpc.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = map
            .iter()
            .map(|(k, s)| (k.to_string(), s.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    out.push_str("# HELP dapr_grpc_io_server_completed_rpcs Count of RPCs by method and status.\n");
    out.push_str("# TYPE dapr_grpc_io_server_completed_rpcs counter\n");
    let app_ref = app.as_str();
    let series: Vec<(String, &Series)> = grpc
        .iter()
        .flat_map(|(method, codes)| {
            codes
                .iter()
                .enumerate()
                .filter(|(_, s)| s.count.load(Ordering::Relaxed) > 0)
                .map(move |(c, s)| {
                    let labels = format!(
                        "app_id=\"{app_ref}\",grpc_server_method=\"{}\",grpc_server_status=\"{}\"",
                        escape(method),
                        GRPC_CODES[c]
                    );
                    (labels, s)
                })
        })
        .collect();
    for (labels, s) in &series {
        let _ = writeln!(
            out,
            "dapr_grpc_io_server_completed_rpcs{{{labels}}} {}",
            s.count.load(Ordering::Relaxed)
        );
    }
    out.push_str("# HELP dapr_grpc_io_server_server_latency Distribution of server latency in milliseconds.\n");
    out.push_str("# TYPE dapr_grpc_io_server_server_latency histogram\n");
    for (labels, s) in &series {
        histogram(&mut out, "dapr_grpc_io_server_server_latency", labels, s);
    }
    out.push_str(
        "# HELP dapr_runtime_component_loaded The number of successfully loaded components.\n",
    );
    out.push_str("# TYPE dapr_runtime_component_loaded counter\n");
    let _ = writeln!(
        out,
        "dapr_runtime_component_loaded{{app_id=\"{app}\"}} {}",
        m.components_loaded.load(Ordering::Relaxed)
    );
    out
}
