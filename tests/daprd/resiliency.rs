//! Resiliency policies on service invocation, between two real sidecars: retries against
//! an app that fails twice then succeeds, a timeout against a slow app, and a circuit
//! breaker that opens on failures and closes again once the app recovers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use test_support::daprd::{daprd, resources};

#[derive(Default)]
struct AppState {
    flaky_calls: AtomicU32,
    broken: AtomicBool,
    broken_calls: AtomicU32,
}

async fn start_app(state: Arc<AppState>) -> u16 {
    let app = Router::new()
        .route(
            "/flaky",
            get(|State(s): State<Arc<AppState>>| async move {
                if s.flaky_calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                StatusCode::OK
            }),
        )
        .route(
            "/breaker",
            get(|State(s): State<Arc<AppState>>| async move {
                s.broken_calls.fetch_add(1, Ordering::SeqCst);
                if s.broken.load(Ordering::SeqCst) {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

const POLICIES: &str = "apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: policies
spec:
  policies:
    timeouts:
      short: 300ms
    retries:
      three:
        policy: constant
        duration: 50ms
        maxRetries: 3
        matching:
          httpStatusCodes: 503
    circuitBreakers:
      cb:
        maxRequests: 1
        timeout: 1s
        trip: consecutiveFailures >= 2
  targets:
    apps:
      {flaky}:
        retry: three
      {slow}:
        timeout: short
      {breaker}:
        circuitBreaker: cb
";

#[tokio::test]
async fn retries_timeouts_and_circuit_breakers() {
    let state = Arc::new(AppState::default());
    let port = start_app(state.clone()).await;
    let dir = resources(&[]);
    let config = test_support::daprd::resolution_config(dir.path());
    // One app behind three sidecars with different app ids, one per policy.
    let mut callees = Vec::new();
    for id in ["flaky-app", "slow-app", "breaker-app"] {
        callees.push(
            daprd()
                .app_id(id)
                .arg("--app-port")
                .arg(port.to_string())
                .arg("--config")
                .arg(config.clone())
                .start()
                .await,
        );
    }
    let policies = POLICIES
        .replace("{flaky}", "flaky-app")
        .replace("{slow}", "slow-app")
        .replace("{breaker}", "breaker-app");
    let res_dir = resources(&[("resiliency.yaml", &policies)]);
    let caller = daprd()
        .resources(res_dir.path())
        .arg("--config")
        .arg(config)
        .start()
        .await;
    assert!(
        caller
            .log()
            .contains("Resiliency configuration loaded: policies"),
        "{}",
        caller.log()
    );
    let c = reqwest::Client::new();
    let call = |app: &str, path: &str| {
        c.get(caller.url(&format!("/v1.0/invoke/{app}/method/{path}")))
            .send()
    };

    // Retries: 503, 503, then 200: the caller sees only the success.
    let r = call("flaky-app", "flaky").await.expect("call");
    assert_eq!(r.status(), 200);
    assert_eq!(state.flaky_calls.load(Ordering::SeqCst), 3);

    // Timeout: the slow app is abandoned after 300 ms.
    let started = Instant::now();
    let r = call("slow-app", "slow").await.expect("call");
    assert_eq!(r.status(), 500);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "timeout not applied: {:?}",
        started.elapsed()
    );
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(
        body["message"].as_str().unwrap_or("").contains("timeout"),
        "{body}"
    );

    // Circuit breaker: two failures open it; calls then fail fast without reaching the app.
    state.broken.store(true, Ordering::SeqCst);
    for _ in 0..2 {
        assert_eq!(
            call("breaker-app", "breaker").await.expect("call").status(),
            500
        );
    }
    let seen = state.broken_calls.load(Ordering::SeqCst);
    let r = call("breaker-app", "breaker").await.expect("call");
    assert_eq!(r.status(), 500);
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("circuit breaker is open"),
        "{body}"
    );
    assert_eq!(
        state.broken_calls.load(Ordering::SeqCst),
        seen,
        "an open breaker does not call the app"
    );

    // After the open period, a healthy app closes it again.
    state.broken.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        call("breaker-app", "breaker").await.expect("call").status(),
        200
    );
    assert_eq!(
        call("breaker-app", "breaker").await.expect("call").status(),
        200
    );
    drop(callees);
}

/// Dapr's built-in retries: a target whose sidecar cannot be reached is tried three more
/// times, a second apart, before the call fails.
#[tokio::test]
async fn unreachable_sidecars_get_the_builtin_retries() {
    let dir = resources(&[]);
    let config = test_support::daprd::resolution_config(dir.path());
    let caller = daprd()
        .app_id("lonely-caller")
        .args(["--config", &config])
        .start()
        .await;
    // A registration whose sidecar is gone: a fresh row pointing at a closed port.
    let closed = test_support::free_port();
    let db = register_ghost(&dir.path().join("hosts.db"), closed);
    assert!(db, "registered the ghost");
    let started = Instant::now();
    let r = reqwest::get(caller.url("/v1.0/invoke/ghost/method/x"))
        .await
        .expect("invoke");
    let elapsed = started.elapsed();
    assert_eq!(r.status(), 500);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["errorCode"], "ERR_DIRECT_INVOKE");
    assert!(
        elapsed >= Duration::from_millis(2900),
        "gave up after {elapsed:?}: no built-in retries"
    );
}

/// Inserts a live-looking `hosts` row for app `ghost` with the sqlite3 command-line tool.
/// Its heartbeat is dated a minute ahead, so that it stays fresh for the whole test
/// however slowly the machine runs it (rows go stale three update intervals after their
/// last heartbeat, and the built-in retries alone take three seconds).
fn register_ghost(db: &std::path::Path, port: u16) -> bool {
    let sql = format!(
        "INSERT INTO hosts (registration_id, address, app_id, namespace, last_update) \
         VALUES ('ghost-1', '127.0.0.1:{port}', 'ghost', 'default', unixepoch(CURRENT_TIMESTAMP) + 60);"
    );
    std::process::Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A Resiliency with a status code outside its protocol's range (gRPC 400, HTTP 11) is
/// refused, with the reason logged, as Dapr refuses it, even when no target uses the
/// policy; the valid documents beside it still apply and the sidecar runs.
#[tokio::test]
async fn invalid_policies_are_refused_with_the_reason_and_the_rest_apply() {
    let state = Arc::new(AppState::default());
    let port = start_app(state.clone()).await;
    let dir = resources(&[]);
    let config = test_support::daprd::resolution_config(dir.path());
    let _callee = daprd()
        .app_id("flaky-app-2")
        .args(["--app-port", &port.to_string(), "--config", &config])
        .start()
        .await;
    let bad = |name: &str, matching: &str| {
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: {name}\nspec:\n  policies:\n    retries:\n      r:\n        policy: constant\n        duration: 10ms\n        maxRetries: 1\n        matching:\n          {matching}\n  targets:\n    apps: {{}}\n"
        )
    };
    let good = POLICIES
        .replace("{flaky}", "flaky-app-2")
        .replace("{slow}", "nobody-slow")
        .replace("{breaker}", "nobody-breaker");
    let res = resources(&[
        ("good.yaml", &good),
        ("bad-grpc.yaml", &bad("bad-grpc", "gRPCStatusCodes: 400")),
        ("bad-http.yaml", &bad("bad-http", "httpStatusCodes: 11")),
    ]);
    let caller = daprd()
        .resources(res.path())
        .args(["--config", &config])
        .start()
        .await;
    let log = caller.log();
    for name in ["bad-grpc", "bad-http"] {
        assert!(
            log.contains(&format!("Could not read resiliency policy {name}: retry r")),
            "{name} refused with its reason:\n{log}"
        );
        assert!(
            !log.contains(&format!("Resiliency configuration loaded: {name}")),
            "{log}"
        );
    }
    assert!(
        log.contains("Resiliency configuration loaded: policies"),
        "{log}"
    );
    let r = reqwest::get(caller.url("/v1.0/invoke/flaky-app-2/method/flaky"))
        .await
        .expect("call");
    assert_eq!(r.status(), 200, "the valid policy's retries apply");
    assert_eq!(state.flaky_calls.load(Ordering::SeqCst), 3);
}
