//! `DAPR_API_TOKEN` and `--max-body-size` on both front doors of the real binary.

use dapr::dapr::proto::common::v1::StateItem;
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use dapr::dapr::proto::runtime::v1::{GetMetadataRequest, GetStateRequest, SaveStateRequest};
use test_support::daprd::daprd;

#[tokio::test]
async fn api_token_guards_everything_but_healthz() {
    let d = daprd().env("DAPR_API_TOKEN", "s3cret").start().await;
    let client = reqwest::Client::new();
    let r = client
        .get(d.url("/v1.0/metadata"))
        .send()
        .await
        .expect("metadata");
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.expect("body"), "invalid api token\n");
    let r = client
        .get(d.url("/v1.0/metadata"))
        .header("dapr-api-token", "wrong")
        .send()
        .await
        .expect("m");
    assert_eq!(r.status(), 401);
    let r = client
        .get(d.url("/v1.0/metadata"))
        .header("dapr-api-token", "s3cret")
        .send()
        .await
        .expect("m");
    assert_eq!(r.status(), 200);
    for path in ["/v1.0/healthz", "/v1.0/healthz/outbound"] {
        let r = client.get(d.url(path)).send().await.expect("healthz");
        assert_eq!(r.status(), 204, "{path} is exempt");
    }

    let mut grpc = DaprClient::connect(format!("http://127.0.0.1:{}", d.grpc))
        .await
        .expect("connect");
    let err = grpc
        .get_metadata(GetMetadataRequest {})
        .await
        .expect_err("no token");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let mut req = tonic::Request::new(GetMetadataRequest {});
    req.metadata_mut()
        .insert("dapr-api-token", "s3cret".parse().expect("ascii"));
    let meta = grpc
        .get_metadata(req)
        .await
        .expect("with token")
        .into_inner();
    assert_eq!(meta.id, d.app_id);
}

#[tokio::test]
async fn oversized_bodies_are_refused_and_nothing_is_written() {
    let d = daprd().arg("--max-body-size").arg("1Ki").start().await;
    let client = reqwest::Client::new();
    let big = "x".repeat(2048);
    let r = client
        .post(d.url("/v1.0/state/statestore"))
        .body(format!(r#"[{{"key":"big","value":"{big}"}}]"#))
        .send()
        .await
        .expect("save");
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["errorCode"], "ERR_MALFORMED_REQUEST");
    assert!(
        body["message"].as_str().unwrap_or("").contains("too large"),
        "{body}"
    );
    let r = client
        .get(d.url("/v1.0/state/statestore/big"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 204, "nothing was written");

    let mut grpc = DaprClient::connect(format!("http://127.0.0.1:{}", d.grpc))
        .await
        .expect("connect");
    let item = StateItem {
        key: "big".into(),
        value: big.into_bytes(),
        ..Default::default()
    };
    let err = grpc
        .save_state(SaveStateRequest {
            store_name: "statestore".into(),
            states: vec![item],
        })
        .await
        .expect_err("too large");
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    let got = grpc
        .get_state(GetStateRequest {
            store_name: "statestore".into(),
            key: "big".into(),
            ..Default::default()
        })
        .await
        .expect("get")
        .into_inner();
    assert!(got.data.is_empty());

    // A body under the limit still works.
    let r = client
        .post(d.url("/v1.0/state/statestore"))
        .body(r#"[{"key":"small","value":"ok"}]"#)
        .send()
        .await
        .expect("save");
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn request_headers_must_fit_the_read_buffer() {
    let big = "x".repeat(20 * 1024);
    let d = daprd().start().await;
    let r = reqwest::Client::new()
        .get(d.url("/v1.0/metadata"))
        .header("x-big", &big)
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status(),
        431,
        "20 KiB of headers exceed the default buffer"
    );
    let d = daprd().arg("--read-buffer-size").arg("64Ki").start().await;
    let r = reqwest::Client::new()
        .get(d.url("/v1.0/metadata"))
        .header("x-big", &big)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200, "a larger --read-buffer-size accepts them");
}

/// Browsers ask before a cross-origin call (a preflight `OPTIONS` with no credentials);
/// Dapr answers it with its CORS headers even when `DAPR_API_TOKEN` guards the API, and
/// names allowed origins on real answers.
#[tokio::test]
async fn cors_preflights_are_answered_before_the_token_is_asked_for() {
    let c = reqwest::Client::new();
    let preflight = |d: &test_support::daprd::Sidecar, origin: &str| {
        c.request(reqwest::Method::OPTIONS, d.url("/v1.0/state/statestore"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,dapr-api-token",
            )
            .send()
    };
    // The default, `*`, with a token set.
    let d = daprd().env("DAPR_API_TOKEN", "s3cret").start().await;
    let r = preflight(&d, "https://web.example.com")
        .await
        .expect("preflight");
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(h["access-control-allow-methods"], "POST");
    assert_eq!(
        h["access-control-allow-headers"],
        "content-type,dapr-api-token"
    );
    // The real call still needs the token, and says who may read the answer.
    let r = c
        .get(d.url("/v1.0/metadata"))
        .header("origin", "https://web.example.com")
        .send()
        .await
        .expect("call");
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");

    // A list: an allowed origin is named back; another gets no CORS headers.
    let d = daprd()
        .args([
            "--allowed-origins",
            "https://web.example.com,https://*.apps.test",
        ])
        .start()
        .await;
    for (origin, allowed) in [
        ("https://web.example.com", true),
        ("https://shop.apps.test", true),
        ("https://evil.example.org", false),
    ] {
        let r = preflight(&d, origin).await.expect("preflight");
        assert_eq!(r.status(), 200, "{origin}");
        assert_eq!(
            r.headers()
                .get("access-control-allow-origin")
                .and_then(|v| v.to_str().ok()),
            allowed.then_some(origin),
            "{origin}"
        );
        let r = c
            .get(d.url("/v1.0/metadata"))
            .header("origin", origin)
            .send()
            .await
            .expect("call");
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers().contains_key("access-control-allow-origin"),
            allowed,
            "{origin}"
        );
    }
}
