//! The metrics endpoint as Dapr's dashboards and alerts read it: series names, label
//! names and values, buckets, and the Configuration's `spec.metric` knobs, one test per
//! series or setting, scraped from the real binary over HTTP.

use dapr::dapr::proto::runtime::v1::{GetStateRequest, dapr_client::DaprClient};
use test_support::daprd::{Sidecar, daprd};

/// Starts a sidecar with a Configuration whose `spec` is `spec` (YAML, indented by two).
async fn with_config(spec: &str) -> (Sidecar, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yaml");
    let yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: metrics\nspec:\n{spec}"
    );
    std::fs::write(&path, yaml).expect("write config");
    let d = daprd()
        .args(["--config", &path.display().to_string()])
        .start()
        .await;
    (d, dir)
}

async fn scrape(d: &Sidecar) -> String {
    reqwest::get(format!("http://127.0.0.1:{}/metrics", d.metrics))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body")
}

async fn get(d: &Sidecar, path: &str, times: usize) {
    let client = reqwest::Client::new();
    for _ in 0..times {
        client.get(d.url(path)).send().await.expect("get");
    }
}

async fn grpc_get_state(d: &Sidecar, store: &str) -> tonic::Status {
    let mut grpc = DaprClient::connect(format!("http://127.0.0.1:{}", d.grpc))
        .await
        .expect("connect");
    let req = GetStateRequest {
        store_name: store.into(),
        key: "k".into(),
        ..Default::default()
    };
    grpc.get_state(req).await.expect_err("unknown store")
}

/// The lines of `text` for `series` (a name with `{`), for messages.
fn lines<'a>(text: &'a str, series: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(series)).collect()
}

/// Asserts `want` is one whole line of the scrape, showing the request counts if not.
fn assert_has_count(text: &str, want: &str) {
    assert!(
        text.lines().any(|l| l == want),
        "{want}\n{:#?}",
        lines(text, "dapr_http_server_request_count{")
    );
}

#[tokio::test]
async fn http_request_count_has_app_id_method_cut_path_and_status() {
    let d = daprd().start().await;
    get(&d, "/v1.0/state/nostore/key-1", 2).await;
    get(&d, "/v1.0/state/nostore/key-2", 1).await;
    let text = scrape(&d).await;
    let app = &d.app_id;
    // Dapr's default (increasedCardinality) cuts state paths at the store name.
    let want = format!(
        r#"dapr_http_server_request_count{{app_id="{app}",method="GET",path="/v1.0/state/nostore",status="400"}} 3"#
    );
    assert_has_count(&text, &want);
    assert!(text.contains("# TYPE dapr_http_server_request_count counter"));
}

#[tokio::test]
async fn http_latency_is_a_histogram_on_daprs_default_buckets() {
    let d = daprd().start().await;
    get(&d, "/v1.0/state/nostore/k", 2).await;
    let text = scrape(&d).await;
    let app = &d.app_id;
    let labels = format!(r#"app_id="{app}",method="GET",path="/v1.0/state/nostore",status="400""#);
    let buckets: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(&format!("dapr_http_server_latency_bucket{{{labels},")))
        .collect();
    // Dapr's 34 bounds, 1 ms to 100 s, and +Inf.
    assert_eq!(buckets.len(), 35, "{buckets:#?}");
    assert!(buckets[0].contains(r#"le="1""#), "{buckets:#?}");
    assert!(buckets[18].contains(r#"le="130""#), "{buckets:#?}");
    assert!(buckets[33].ends_with(r#"le="100000"} 2"#), "{buckets:#?}");
    assert!(buckets[34].ends_with(r#"le="+Inf"} 2"#), "{buckets:#?}");
    assert!(text.contains(&format!("dapr_http_server_latency_count{{{labels}}} 2")));
    assert!(text.contains("# TYPE dapr_http_server_latency histogram"));
}

#[tokio::test]
async fn increased_cardinality_off_leaves_the_path_empty() {
    let (d, _dir) = with_config("  metric:\n    http:\n      increasedCardinality: false\n").await;
    get(&d, "/v1.0/state/nostore/k", 1).await;
    let text = scrape(&d).await;
    let app = &d.app_id;
    let want = format!(
        r#"dapr_http_server_request_count{{app_id="{app}",method="GET",path="",status="400"}} 1"#
    );
    assert_has_count(&text, &want);
}

#[tokio::test]
async fn path_matching_labels_with_the_pattern_and_its_invoke_form() {
    let (d, _dir) = with_config(
        "  metric:\n    http:\n      increasedCardinality: false\n      pathMatching:\n      - /orders/{orderID}\n",
    )
    .await;
    get(&d, "/v1.0/invoke/shop/method/orders/1", 1).await;
    get(&d, "/v1.0/invoke/shop/method/orders/2", 1).await;
    get(&d, "/v1.0/state/nostore/k", 1).await;
    let text = scrape(&d).await;
    let counts = lines(&text, "dapr_http_server_request_count{");
    let routed: Vec<&&str> = counts
        .iter()
        .filter(|l| l.contains(r#"path="/v1.0/invoke/{app_id}/method/orders/{orderID}""#))
        .collect();
    assert_eq!(routed.len(), 1, "{counts:#?}");
    assert!(routed[0].ends_with(" 2"), "{counts:#?}");
    assert!(
        counts
            .iter()
            .any(|l| l.contains(r#"path="",status="400"} 1"#)),
        "an unmatched path has no label: {counts:#?}"
    );
    assert!(!text.contains("orders/1"), "{counts:#?}");
}

#[tokio::test]
async fn exclude_verbs_leaves_the_method_empty() {
    let (d, _dir) = with_config("  metric:\n    http:\n      excludeVerbs: true\n").await;
    get(&d, "/v1.0/state/nostore/k", 1).await;
    let text = scrape(&d).await;
    let app = &d.app_id;
    let want = format!(
        r#"dapr_http_server_request_count{{app_id="{app}",method="",path="/v1.0/state/nostore",status="400"}} 1"#
    );
    assert_has_count(&text, &want);
}

#[tokio::test]
async fn latency_distribution_buckets_replace_the_defaults() {
    let (d, _dir) = with_config("  metric:\n    latencyDistributionBuckets: [5, 50, 500]\n").await;
    get(&d, "/v1.0/state/nostore/k", 1).await;
    grpc_get_state(&d, "nostore").await;
    let text = scrape(&d).await;
    for (histogram, series) in [
        ("dapr_http_server_latency_bucket{", "/v1.0/state/nostore"),
        (
            "dapr_grpc_io_server_server_latency_bucket{",
            "/dapr.proto.runtime.v1.Dapr/GetState",
        ),
    ] {
        let bounds: Vec<&str> = lines(&text, histogram)
            .iter()
            .filter(|l| l.contains(series))
            .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(bounds, ["5", "50", "500", "+Inf"], "{histogram}");
    }
}

#[tokio::test]
async fn grpc_series_name_the_full_method_and_grpc_gos_status() {
    let d = daprd().start().await;
    grpc_get_state(&d, "nostore").await;
    let text = scrape(&d).await;
    let app = &d.app_id;
    let labels = format!(
        r#"app_id="{app}",grpc_server_method="/dapr.proto.runtime.v1.Dapr/GetState",grpc_server_status="InvalidArgument""#
    );
    assert!(
        text.contains(&format!("dapr_grpc_io_server_completed_rpcs{{{labels}}} 1")),
        "{:#?}",
        lines(&text, "dapr_grpc_io_server_completed_rpcs{")
    );
    assert!(text.contains(&format!(
        r#"dapr_grpc_io_server_server_latency_bucket{{{labels},le="+Inf"}} 1"#
    )));
    assert!(text.contains("# TYPE dapr_grpc_io_server_server_latency histogram"));
}

#[tokio::test]
async fn error_codes_are_counted_when_record_error_codes_is_on() {
    let (d, _dir) = with_config("  metric:\n    recordErrorCodes: true\n").await;
    get(&d, "/v1.0/state/nostore/k", 2).await;
    grpc_get_state(&d, "nostore").await;
    get(&d, "/v1.0/invoke/nobody/method/x", 1).await;
    let text = scrape(&d).await;
    let app = &d.app_id;
    let counted = lines(&text, "dapr_error_code_total{");
    for want in [
        format!(
            r#"dapr_error_code_total{{app_id="{app}",category="state",error_code="ERR_STATE_STORE_NOT_FOUND"}} 3"#
        ),
        format!(
            r#"dapr_error_code_total{{app_id="{app}",category="service-invocation",error_code="ERR_DIRECT_INVOKE"}} 1"#
        ),
    ] {
        assert!(counted.contains(&want.as_str()), "{want}\n{counted:#?}");
    }
    assert!(text.contains("# TYPE dapr_error_code_total counter"));
}

#[tokio::test]
async fn error_codes_are_not_counted_by_default() {
    let d = daprd().start().await;
    get(&d, "/v1.0/state/nostore/k", 1).await;
    let text = scrape(&d).await;
    assert!(lines(&text, "dapr_error_code_total").is_empty(), "{text}");
}

#[tokio::test]
async fn metric_enabled_false_records_no_api_series() {
    let (d, _dir) = with_config("  metric:\n    enabled: false\n").await;
    get(&d, "/v1.0/state/nostore/k", 1).await;
    let text = scrape(&d).await;
    assert!(
        lines(&text, "dapr_http_server_request_count{").is_empty(),
        "{text}"
    );
    assert!(text.contains("process_resident_memory_bytes "), "{text}");
}

/// The value of an unlabelled series.
fn value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test]
async fn process_metrics_report_this_sidecar() {
    let d = daprd().start().await;
    let text = scrape(&d).await;
    // What the kernel says of the same process, read beside the scrape.
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).expect("status");
    let rss_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    let rss = value(&text, "process_resident_memory_bytes");
    assert!(
        (rss - rss_kb * 1024.0).abs() < 16.0 * 1024.0 * 1024.0,
        "reported {rss}, kernel {rss_kb} KiB"
    );
    assert!(text.contains("# TYPE process_resident_memory_bytes gauge"));
    assert!(value(&text, "process_virtual_memory_bytes") >= rss);
    assert!(value(&text, "process_open_fds") >= 3.0);
    assert!(value(&text, "process_max_fds") >= value(&text, "process_open_fds"));
    assert!(value(&text, "process_cpu_seconds_total") >= 0.0);
    assert!(text.contains("# TYPE process_cpu_seconds_total counter"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let started = value(&text, "process_start_time_seconds");
    assert!(
        started <= now + 1.0 && started > now - 120.0,
        "started {started}, now {now}"
    );
}
