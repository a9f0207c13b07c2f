//! At-least-once delivery on a real Redis: 10,000 messages published through one sidecar
//! while the subscriber's sidecar is killed with SIGKILL half-way and started again. Every
//! message must reach the app at least once: those the dead sidecar had taken but not
//! acknowledged are reclaimed from the consumer group's pending list by its successor.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use test_support::daprd::{component, daprd, resources};

const MESSAGES: usize = 10_000;

#[derive(Default)]
struct Seen {
    ids: Mutex<HashSet<u64>>,
    deliveries: Mutex<u64>,
}

async fn start_app(topic: String, seen: Arc<Seen>) -> u16 {
    let subscribe =
        serde_json::json!([{"pubsubname": "redis-pubsub", "topic": topic, "route": "/msg"}]);
    let app = Router::new()
        .route(
            "/dapr/subscribe",
            get(move || {
                let body = subscribe.clone();
                async move { axum::Json(body) }
            }),
        )
        .route(
            "/msg",
            post(|State(s): State<Arc<Seen>>, body: Bytes| async move {
                let ce: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if let Some(n) = ce["data"]["n"].as_u64() {
                    s.ids.lock().expect("lock").insert(n);
                }
                *s.deliveries.lock().expect("lock") += 1;
                axum::http::StatusCode::OK
            }),
        )
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

fn kill9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_streams_deliver_every_message_across_a_sigkilled_subscriber() {
    let redis = format!(
        "127.0.0.1:{}",
        std::env::var("REDIS_PORT").expect("REDIS_PORT (scripts/services.sh)")
    );
    let topic = format!("reliability-{}", uuid::Uuid::new_v4().simple());
    let broker = component(
        "redis-pubsub",
        "pubsub.redis",
        &[
            ("redisHost", &redis),
            ("processingTimeout", "2s"),
            ("redeliverInterval", "1s"),
        ],
    );
    let dir = resources(&[("redis.yaml", &broker)]);
    let seen = Arc::new(Seen::default());
    let app_port = start_app(topic.clone(), seen.clone()).await;
    let subscriber = daprd()
        .app_id("reliable-subscriber")
        .resources(dir.path())
        .args(["--app-port", &app_port.to_string()]);
    let t0 = Instant::now();
    let mut sub = subscriber.clone().start().await;
    eprintln!("subscriber up after {:?}", t0.elapsed());
    if t0.elapsed() > Duration::from_secs(3) {
        eprintln!("slow start; log:\n{}", sub.log());
    }
    let publisher = daprd()
        .app_id("reliable-publisher")
        .resources(dir.path())
        .start()
        .await;
    eprintln!("publisher up after {:?}", t0.elapsed());
    let http = reqwest::Client::new();
    let url = publisher.url(&format!("/v1.0/publish/redis-pubsub/{topic}"));

    let started = Instant::now();
    let mut killed = false;
    let mut failures = 0usize;
    for chunk in (0..MESSAGES).collect::<Vec<_>>().chunks(100) {
        let sends = chunk.iter().map(|n| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.post(&url)
                    .json(&serde_json::json!({"n": n}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }
        });
        for r in futures::future::join_all(sends).await {
            // A publish the broker did not take is the publisher's error, never a loss.
            if r.ok() != Some(204) {
                failures += 1;
            }
        }
        if !killed && chunk[0] >= MESSAGES / 2 {
            kill9(sub.pid());
            killed = true;
            sub = subscriber.clone().start().await;
        }
    }
    assert_eq!(failures, 0, "every publish answered 204");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = seen.ids.lock().expect("lock").len();
        if got == MESSAGES {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {got} of {MESSAGES} messages arrived; subscriber log:\n{}",
            sub.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deliveries = *seen.deliveries.lock().expect("lock");
    println!(
        "{MESSAGES} messages, {deliveries} deliveries ({} redelivered) in {:.1}s across a SIGKILL",
        deliveries - MESSAGES as u64,
        started.elapsed().as_secs_f64()
    );
    assert!(killed);
    eprintln!("done after {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_a_topic_and_other_apps_get_everything() {
    const N: usize = 400;
    let redis = format!(
        "127.0.0.1:{}",
        std::env::var("REDIS_PORT").expect("REDIS_PORT (scripts/services.sh)")
    );
    let topic = format!("groups-{}", uuid::Uuid::new_v4().simple());
    let broker = component("redis-pubsub", "pubsub.redis", &[("redisHost", &redis)]);
    let dir = resources(&[("redis.yaml", &broker)]);
    // Two replicas of "orders" (one consumer group), one "audit" (a group of its own).
    let (r1, r2, audit) = (
        Arc::new(Seen::default()),
        Arc::new(Seen::default()),
        Arc::new(Seen::default()),
    );
    let mut sidecars = Vec::new();
    for (app_id, seen) in [("orders", &r1), ("orders", &r2), ("audit", &audit)] {
        let port = start_app(topic.clone(), seen.clone()).await;
        sidecars.push(
            daprd()
                .app_id(app_id)
                .resources(dir.path())
                .args(["--app-port", &port.to_string()])
                .start()
                .await,
        );
    }
    let publisher = daprd()
        .app_id("groups-publisher")
        .resources(dir.path())
        .start()
        .await;
    let http = reqwest::Client::new();
    for n in 0..N {
        let r = http
            .post(publisher.url(&format!("/v1.0/publish/redis-pubsub/{topic}")))
            .json(&serde_json::json!({"n": n}))
            .send()
            .await
            .expect("publish");
        assert_eq!(r.status().as_u16(), 204);
    }
    let count = |s: &Arc<Seen>| s.ids.lock().expect("lock").len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (count(&audit) < N || count(&r1) + count(&r2) < N) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&audit), N, "another app gets every message");
    let union: HashSet<u64> = r1
        .ids
        .lock()
        .expect("lock")
        .union(&r2.ids.lock().expect("lock"))
        .copied()
        .collect();
    assert_eq!(
        union.len(),
        N,
        "the replicas between them get every message"
    );
    assert!(
        count(&r1) > 0 && count(&r2) > 0,
        "both replicas take a share"
    );
    assert_eq!(
        count(&r1) + count(&r2),
        N,
        "each message to one replica only"
    );
    drop(sidecars);
}
