//! mDNS, the standalone default: two `daprd` processes started with no Configuration at
//! all find each other by app id over multicast, and a sidecar that stops says goodbye.
//!
//! Multicast must not leave the machine, so these tests run only inside the private
//! network namespace `scripts/in-netns.sh` makes (loopback with multicast on); anywhere
//! else they fail with that instruction rather than pass without testing anything.

use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::Value;
use test_support::daprd::daprd;

fn require_test_netns() {
    assert!(
        std::env::var_os("RDAPR_TEST_NETNS").is_some(),
        "the mDNS tests multicast; run them in the test network namespace: \
         scripts/in-netns.sh cargo test -p process-tests --test daprd_mdns"
    );
}

/// An app answering `/whoami` with its own name and the caller and callee app ids.
async fn start_app(name: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind app");
    let port = listener.local_addr().expect("addr").port();
    let app = Router::new().route(
        "/whoami",
        get(move |h: HeaderMap| async move {
            let v = |n: &str| {
                h.get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            format!(
                "{name}: {} -> {}",
                v("dapr-caller-app-id"),
                v("dapr-callee-app-id")
            )
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

#[tokio::test]
async fn sidecars_find_each_other_by_app_id_with_no_configuration() {
    require_test_netns();
    let suffix = test_support::free_port();
    let (callee_id, caller_id) = (
        format!("mdns-callee-{suffix}"),
        format!("mdns-caller-{suffix}"),
    );
    let app = start_app("app").await;
    let callee = daprd()
        .app_id(&callee_id)
        .arg("--app-port")
        .arg(app.to_string())
        .start()
        .await;
    let caller = daprd().app_id(&caller_id).start().await;
    assert!(
        callee.log().contains("mDNS name resolution"),
        "mDNS is the default; log:\n{}",
        callee.log()
    );

    let c = reqwest::Client::new();
    let url = caller.url(&format!("/v1.0/invoke/{callee_id}/method/whoami"));
    let r = c.get(&url).send().await.expect("invoke");
    let status = r.status();
    let body = r.text().await.expect("body");
    assert_eq!(
        status,
        200,
        "{body}\ncaller log:\n{}\ncallee log:\n{}",
        caller.log(),
        callee.log()
    );
    assert_eq!(body, format!("app: {caller_id} -> {callee_id}"));

    // And the other way round (the callee's sidecar finds the caller's, which has no app:
    // Dapr answers that with an error from the callee side, not a resolution failure).
    let r = c
        .get(callee.url(&format!("/v1.0/invoke/{caller_id}/method/x")))
        .send()
        .await
        .expect("invoke back");
    let back: Value = r.json().await.expect("json");
    assert_ne!(
        back["message"].as_str().unwrap_or(""),
        format!("failed to resolve address for '{caller_id}'"),
        "{back}"
    );

    // An app id nobody announces is Dapr's ERR_DIRECT_INVOKE after the browse timeout.
    let started = Instant::now();
    let r = c
        .get(caller.url("/v1.0/invoke/nobody-announces-this/method/x"))
        .send()
        .await
        .expect("invoke");
    assert_eq!(r.status(), 500);
    let err: Value = r.json().await.expect("json");
    assert_eq!(err["errorCode"], "ERR_DIRECT_INVOKE", "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A sidecar that stops sends goodbye records: callers stop finding it at once rather
    // than after the 60 s cache.
    callee.sigterm();
    let mut callee = callee;
    callee.wait_exit(Duration::from_secs(10)).await;
    let r = c.get(&url).send().await.expect("invoke after stop");
    let err: Value = r.json().await.expect("json");
    assert_eq!(err["errorCode"], "ERR_DIRECT_INVOKE", "{err}");
}

#[tokio::test]
async fn calls_spread_over_every_instance_of_an_app() {
    require_test_netns();
    let suffix = test_support::free_port();
    let app_id = format!("mdns-multi-{suffix}");
    let (app1, app2) = (start_app("one").await, start_app("two").await);
    let _one = daprd()
        .app_id(&app_id)
        .arg("--app-port")
        .arg(app1.to_string())
        .start()
        .await;
    let _two = daprd()
        .app_id(&app_id)
        .arg("--app-port")
        .arg(app2.to_string())
        .start()
        .await;
    let caller = daprd()
        .app_id(&format!("mdns-spread-{suffix}"))
        .start()
        .await;
    // Both instances answer every query, so within a few calls both have been used.
    let c = reqwest::Client::new();
    let url = caller.url(&format!("/v1.0/invoke/{app_id}/method/whoami"));
    let mut answered_by = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while answered_by.len() < 2 && Instant::now() < deadline {
        let r = c.get(&url).send().await.expect("invoke");
        assert_eq!(r.status(), 200);
        let body = r.text().await.expect("body");
        answered_by.insert(body.split(':').next().unwrap_or("").to_string());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        answered_by.into_iter().collect::<Vec<_>>(),
        ["one", "two"],
        "calls reach both instances"
    );
}

/// A sidecar whose internal gRPC server listens on loopback only is reachable only there,
/// so that is the address it announces (the test namespace has a second interface, whose
/// address would be refused); `DAPR_HOST_IP` is announced as given, loopback or not.
#[tokio::test]
async fn a_loopback_bound_sidecar_announces_its_loopback_address() {
    require_test_netns();
    let suffix = test_support::free_port();
    let app = start_app("app").await;
    let caller = daprd()
        .app_id(&format!("mdns-lo-caller-{suffix}"))
        .start()
        .await;
    let c = reqwest::Client::new();
    let cases: [(&str, Option<&str>, &str); 4] = [
        ("127.0.0.1", None, "127.0.0.1"),
        ("localhost", None, "127.0.0.1"),
        ("[::1]", None, "::1"),
        ("0.0.0.0", Some("127.0.0.1"), "127.0.0.1"),
    ];
    for (i, (listen, host_ip, announced)) in cases.into_iter().enumerate() {
        let callee_id = format!("mdns-lo-{i}-{suffix}");
        let mut b = daprd()
            .app_id(&callee_id)
            .arg("--app-port")
            .arg(app.to_string())
            .arg("--dapr-internal-grpc-listen-address")
            .arg(listen);
        if let Some(ip) = host_ip {
            b = b.env("DAPR_HOST_IP", ip);
        }
        let callee = b.start().await;
        assert!(
            callee.log().contains(&format!(".local. at {announced}")),
            "listen {listen}, DAPR_HOST_IP {host_ip:?}: announces {announced}; log:\n{}",
            callee.log()
        );
        let r = c
            .get(caller.url(&format!("/v1.0/invoke/{callee_id}/method/whoami")))
            .send()
            .await
            .expect("invoke");
        let status = r.status();
        let body = r.text().await.expect("body");
        assert_eq!(
            (status.as_u16(), body.as_str()),
            (
                200,
                format!("app: mdns-lo-caller-{suffix} -> {callee_id}").as_str()
            ),
            "listen {listen}; caller log:\n{}",
            caller.log()
        );
    }
}
