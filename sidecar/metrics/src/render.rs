use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Metrics;
use super::series::Series;

/// gRPC status names as grpc-go's `codes.Code` spells them, which Dapr's labels use.
const GRPC_CODES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn histogram(out: &mut String, bounds: &[f64], name: &str, labels: &str, s: &Series) {
    let mut cumulative = 0;
    for (i, bound) in bounds.iter().enumerate() {
        cumulative += s.buckets[i].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
    }
    cumulative += s.buckets[bounds.len()].load(Ordering::Relaxed);
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
    let sum_ms = s.sum_ns.load(Ordering::Relaxed) as f64 / 1e6;
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum_ms}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
}

/// A counter and a latency histogram over the same label sets, each `(name, help)`.
fn counted_with_latency(
    out: &mut String,
    bounds: &[f64],
    (count, count_help): (&str, &str),
    (latency, latency_help): (&str, &str),
    series: &[(String, &Series)],
) {
    let _ = writeln!(out, "# HELP {count} {count_help}\n# TYPE {count} counter");
    for (labels, s) in series {
        let n = s.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{count}{{{labels}}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP {latency} {latency_help}\n# TYPE {latency} histogram"
    );
    for (labels, s) in series {
        histogram(out, bounds, latency, labels, s);
    }
}

pub fn render(m: &Metrics) -> String {
    let app = escape(&m.app_id);
    let bounds = &m.bounds[..];
    let mut out = String::with_capacity(4096);

    let http: Vec<(String, &'static str, u16, Arc<Series>)> = {
        let map = m.http.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = map
            .iter()
            .flat_map(|(path, by_key)| {
                by_key
                    .iter()
                    .map(move |((method, status), s)| (escape(path), *method, *status, s.clone()))
            })
            .collect();
        v.sort_by(|a, b| (a.1, &a.0, a.2).cmp(&(b.1, &b.0, b.2)));
        v
    };
    let http_labels: Vec<(String, &Series)> = http
        .iter()
        .map(|(path, method, status, s)| {
            (
                format!("app_id=\"{app}\",method=\"{method}\",path=\"{path}\",status=\"{status}\""),
                s.as_ref(),
            )
        })
        .collect();
    counted_with_latency(
        &mut out,
        bounds,
        (
            "dapr_http_server_request_count",
            "Count of HTTP requests processed by the server.",
        ),
        (
            "dapr_http_server_latency",
            "HTTP request end-to-end latency in server.",
        ),
        &http_labels,
    );

    let grpc: Vec<(String, Arc<[Series]>)> = {
        let map = m.grpc.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = map.iter().map(|(k, s)| (escape(k), s.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let grpc_labels: Vec<(String, &Series)> = grpc
        .iter()
        .flat_map(|(method, codes)| {
            let app = app.as_str();
            codes
                .iter()
                .enumerate()
                .filter(|(_, s)| s.count.load(Ordering::Relaxed) > 0)
                .map(move |(c, s)| {
                    let labels = format!(
                        "app_id=\"{app}\",grpc_server_method=\"{method}\",grpc_server_status=\"{}\"",
                        GRPC_CODES[c]
                    );
                    (labels, s)
                })
        })
        .collect();
    counted_with_latency(
        &mut out,
        bounds,
        (
            "dapr_grpc_io_server_completed_rpcs",
            "Distribution of bytes sent per RPC, by method.",
        ),
        (
            "dapr_grpc_io_server_server_latency",
            "Time between first byte of request received to last byte of response sent, or terminal error.",
        ),
        &grpc_labels,
    );

    if m.record_error_codes {
        let mut errors: Vec<_> = {
            let map = m.errors.read().unwrap_or_else(|e| e.into_inner());
            map.iter()
                .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
                .collect()
        };
        errors.sort();
        out.push_str("# HELP dapr_error_code_total Total number of times an error with a specific error code was encountered.\n");
        out.push_str("# TYPE dapr_error_code_total counter\n");
        for ((code, category), n) in errors {
            let _ = writeln!(
                out,
                "dapr_error_code_total{{app_id=\"{app}\",category=\"{category}\",error_code=\"{code}\"}} {n}"
            );
        }
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
    super::process::render(&mut out);
    out
}
