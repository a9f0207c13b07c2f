//! The HTTP state API of the real binary on its embedded store: status codes, headers and
//! error bodies a Dapr client relies on.

use serde_json::{Value, json};
use test_support::daprd::daprd;

async fn post(c: &reqwest::Client, url: String, body: &str) -> reqwest::Response {
    c.post(url)
        .body(body.to_string())
        .send()
        .await
        .expect("post")
}

async fn error_code(r: reqwest::Response) -> String {
    let body: Value = r.json().await.expect("json error body");
    body["errorCode"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn etags_options_and_errors() {
    let d = daprd().start().await;
    let c = reqwest::Client::new();
    let save = d.url("/v1.0/state/statestore");
    assert_eq!(
        post(&c, save.clone(), r#"[{"key":"a","value":{"n":1}}]"#)
            .await
            .status(),
        204
    );
    let r = c
        .get(d.url("/v1.0/state/statestore/a"))
        .send()
        .await
        .expect("get");
    let etag = r.headers()["etag"].to_str().expect("etag").to_string();
    assert_eq!(r.text().await.expect("body"), r#"{"n":1}"#);

    let stale = post(
        &c,
        save.clone(),
        &format!(r#"[{{"key":"a","value":2,"etag":"{etag}"}}]"#),
    )
    .await;
    assert_eq!(stale.status(), 204);
    let r = post(
        &c,
        save.clone(),
        &format!(r#"[{{"key":"a","value":3,"etag":"{etag}"}}]"#),
    )
    .await;
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "ERR_STATE_SAVE");
    let r = post(
        &c,
        save.clone(),
        r#"[{"key":"a","value":3,"etag":"not-a-number"}]"#,
    )
    .await;
    assert_eq!(
        r.status(),
        409,
        "a foreign etag never matches (in-memory, as in Dapr)"
    );
    let r = post(
        &c,
        save.clone(),
        r#"[{"key":"a","value":3,"options":{"concurrency":"first-write"}}]"#,
    )
    .await;
    assert_eq!(
        r.status(),
        409,
        "first-write without etag on an existing key"
    );
    let r = post(
        &c,
        save.clone(),
        r#"[{"key":"a","value":3,"options":{"concurrency":"sometimes"}}]"#,
    )
    .await;
    assert_eq!(
        r.status(),
        500,
        "an unknown concurrency model fails the save, as in Dapr"
    );
    assert_eq!(error_code(r).await, "ERR_STATE_SAVE");

    let r = c
        .delete(d.url("/v1.0/state/statestore/a"))
        .header("If-Match", etag.as_str())
        .send()
        .await
        .expect("del");
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "ERR_STATE_DELETE");
    assert_eq!(
        c.get(d.url("/v1.0/state/statestore/a"))
            .send()
            .await
            .expect("get")
            .status(),
        200
    );

    for bad in [
        "not json",
        "{\"key\":\"x\"}",
        r#"[{"value":1}]"#,
        r#"[{"key":"a||b","value":1}]"#,
    ] {
        let r = post(&c, save.clone(), bad).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(error_code(r).await, "ERR_MALFORMED_REQUEST", "{bad}");
    }
    let r = post(&c, d.url("/v1.0/state/nope"), "[]").await;
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "ERR_STATE_STORE_NOT_FOUND");
}

#[tokio::test]
async fn ttl_metadata_and_query_parameters() {
    let d = daprd().start().await;
    let c = reqwest::Client::new();
    let r = post(
        &c,
        d.url("/v1.0/state/statestore?metadata.ttlInSeconds=100"),
        r#"[{"key":"t","value":1}]"#,
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = c
        .get(d.url("/v1.0/state/statestore/t"))
        .send()
        .await
        .expect("get");
    let expiry = r
        .headers()
        .get("metadata.ttlExpireTime")
        .expect("ttl header")
        .to_str()
        .expect("text");
    assert!(expiry.ends_with('Z') && expiry.len() == 20, "{expiry}");
    let r = post(
        &c,
        d.url("/v1.0/state/statestore"),
        r#"[{"key":"t","value":1,"metadata":{"ttlInSeconds":"x"}}]"#,
    )
    .await;
    assert_eq!(r.status(), 500, "a bad TTL fails the save, as in Dapr");
    assert_eq!(error_code(r).await, "ERR_STATE_SAVE");
    let r = c
        .get(d.url("/v1.0/state/statestore/t?consistency=strong"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn bulk_transactions_and_query() {
    let d = daprd().start().await;
    let c = reqwest::Client::new();
    let docs = r#"[{"key":"p1","value":{"city":"Oslo","n":1}},{"key":"p2","value":{"city":"Rome","n":2}},{"key":"p3","value":{"city":"Oslo","n":3}}]"#;
    assert_eq!(
        post(&c, d.url("/v1.0/state/statestore"), docs)
            .await
            .status(),
        204
    );

    let r = post(
        &c,
        d.url("/v1.0/state/statestore/bulk"),
        r#"{"keys":["p1","missing","p3"],"parallelism":2}"#,
    )
    .await;
    assert_eq!(r.status(), 200);
    let items: Value = r.json().await.expect("json");
    assert_eq!(items[0]["key"], "p1");
    assert_eq!(items[0]["data"], json!({"city":"Oslo","n":1}));
    assert!(items[0]["etag"].is_string());
    assert_eq!(items[1], json!({"key":"missing"}));
    assert_eq!(items[2]["data"]["n"], 3);

    let r = post(
        &c,
        d.url("/v1.0-alpha1/state/statestore/query"),
        r#"{"filter":{"EQ":{"city":"Oslo"}},"sort":[{"key":"n","order":"DESC"}]}"#,
    )
    .await;
    assert_eq!(r.status(), 200);
    let q: Value = r.json().await.expect("json");
    let keys: Vec<&str> = q["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|i| i["key"].as_str())
        .collect();
    assert_eq!(keys, ["p3", "p1"]);
    let r = post(
        &c,
        d.url("/v1.0-alpha1/state/statestore/query"),
        r#"{"filter":{"EQ":{"city":"Paris"}}}"#,
    )
    .await;
    assert_eq!(r.status(), 204);

    // A transaction with a stale etag writes nothing.
    let etag = c
        .get(d.url("/v1.0/state/statestore/p1"))
        .send()
        .await
        .expect("get")
        .headers()["etag"]
        .to_str()
        .expect("etag")
        .to_string();
    assert_eq!(
        post(
            &c,
            d.url("/v1.0/state/statestore"),
            r#"[{"key":"p1","value":"bumped"}]"#
        )
        .await
        .status(),
        204
    );
    let tx = format!(
        r#"{{"operations":[{{"operation":"upsert","request":{{"key":"p2","value":"changed"}}}},{{"operation":"delete","request":{{"key":"p3"}}}},{{"operation":"upsert","request":{{"key":"p1","value":"x","etag":"{etag}"}}}}]}}"#
    );
    let r = post(&c, d.url("/v1.0/state/statestore/transaction"), &tx).await;
    assert_eq!(r.status(), 500);
    assert_eq!(error_code(r).await, "ERR_STATE_TRANSACTION");
    let p2 = c
        .get(d.url("/v1.0/state/statestore/p2"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert_eq!(p2, r#"{"city":"Rome","n":2}"#);
    assert_eq!(
        c.get(d.url("/v1.0/state/statestore/p3"))
            .send()
            .await
            .expect("get")
            .status(),
        200
    );

    let r = post(
        &c,
        d.url("/v1.0/state/statestore/transaction"),
        r#"{"operations":[{"operation":"merge","request":{"key":"a"}}]}"#,
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "ERR_NOT_SUPPORTED_STATE_OPERATION");
    let ok = r#"{"operations":[{"operation":"upsert","request":{"key":"p2","value":"changed"}},{"operation":"delete","request":{"key":"p3"}}]}"#;
    assert_eq!(
        post(&c, d.url("/v1.0/state/statestore/transaction"), ok)
            .await
            .status(),
        204
    );
    assert_eq!(
        c.get(d.url("/v1.0/state/statestore/p3"))
            .send()
            .await
            .expect("get")
            .status(),
        204
    );

    let r = c
        .put(d.url("/v1.0/metadata/owner"))
        .body("team-a")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 204);
    let meta: Value = reqwest::get(d.url("/v1.0/metadata"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(meta["extended"]["owner"], "team-a");
}

#[tokio::test]
async fn error_bodies_have_daprs_shape() {
    let d = daprd().start().await;
    let c = reqwest::Client::new();
    // A rich error: ErrorInfo in the body.
    let body: Value = c
        .get(d.url("/v1.0/state/nope/k"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(
        body,
        json!({
            "errorCode": "ERR_STATE_STORE_NOT_FOUND",
            "message": "state store nope is not found",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "domain": "dapr.io",
                "metadata": {"appID": d.app_id},
                "reason": "DAPR_STATE_NOT_FOUND"
            }]
        })
    );
    // A legacy error: just errorCode and message.
    assert_eq!(
        post(
            &c,
            d.url("/v1.0/state/statestore"),
            r#"[{"key":"e","value":1}]"#
        )
        .await
        .status(),
        204
    );
    let r = post(
        &c,
        d.url("/v1.0/state/statestore"),
        r#"[{"key":"e","value":2,"etag":"999999"}]"#,
    )
    .await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("failed saving state in state store statestore: possible etag mismatch")
    );
}

#[tokio::test]
async fn keys_are_decoded_like_dapr_and_may_be_named_like_routes() {
    let d = daprd().start().await;
    let c = reqwest::Client::new();
    let items = r#"[{"key":"bulk","value":"b"},{"key":"transaction","value":"t"},{"key":"a b/c","value":"s"}]"#;
    assert_eq!(
        post(&c, d.url("/v1.0/state/statestore"), items)
            .await
            .status(),
        204
    );
    for (path, want) in [
        ("bulk", "\"b\""),
        ("transaction", "\"t\""),
        ("a+b%2Fc", "\"s\""),
        ("a%20b%2Fc", "\"s\""),
    ] {
        let r = c
            .get(d.url(&format!("/v1.0/state/statestore/{path}")))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.text().await.expect("body"), want, "{path}");
    }
    let r = c
        .delete(d.url("/v1.0/state/statestore/bulk"))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 204);
    assert_eq!(
        c.get(d.url("/v1.0/state/statestore/bulk"))
            .send()
            .await
            .expect("get")
            .status(),
        204
    );
    let r = c
        .get(d.url("/v1.0/state/statestore/a%7C%7Cb"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 400, "keys may not contain ||");
    let r = c
        .get(d.url("/v1.0/state/statestore/bad%zz"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 400);
    // Dapr's router answers a broken escape itself, in plain text with Go's words.
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        r.text().await.expect("body"),
        "failed to unescape request parameter \"key\". Error: invalid URL escape \"%zz\"\n"
    );
    // A byte that is not UTF-8 is a key in Go: not an error.
    let r = c
        .get(d.url("/v1.0/state/statestore/x%ff"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn hostile_queries_and_bulk_requests_are_refused_or_bounded() {
    let d = daprd().start().await;
    let c = reqwest::Client::new();
    let docs = r#"[{"key":"q1","value":{"x":1}},{"key":"q2","value":{"x":2}}]"#;
    assert_eq!(
        post(&c, d.url("/v1.0/state/statestore"), docs)
            .await
            .status(),
        204
    );
    for q in [
        r#"{"page":{"limit":18446744073709551615,"token":"1"}}"#,
        r#"{"page":{"limit":1,"token":"99999999999999999999"}}"#,
        r#"{"filter":{"NOPE":{}}}"#,
        "not json",
    ] {
        let r = post(&c, d.url("/v1.0-alpha1/state/statestore/query"), q).await;
        assert_eq!(r.status(), 500, "{q}");
        assert_eq!(error_code(r).await, "ERR_STATE_QUERY", "{q}");
    }
    let r = post(
        &c,
        d.url("/v1.0/state/statestore/bulk"),
        r#"{"keys":["q1","q1","q2"],"parallelism":1000000}"#,
    )
    .await;
    assert_eq!(r.status(), 200);
    let items: Value = r.json().await.expect("json");
    assert_eq!(items.as_array().map(Vec::len), Some(3));
    // The sidecar is still alive and serving.
    assert_eq!(
        c.get(d.url("/v1.0/healthz"))
            .send()
            .await
            .expect("healthz")
            .status(),
        204
    );
}

/// Keys are decoded once, as Go's `url.QueryUnescape` decodes them in Dapr's router:
/// `%2B` is a plus, a bare `+` is a space.
#[tokio::test]
async fn escaped_keys_are_decoded_exactly_once() {
    let d = daprd().start().await;
    let c = reqwest::Client::new();
    let save = d.url("/v1.0/state/statestore");
    let body = r#"[{"key":"p+q","value":"plus"},{"key":"p q","value":"space"},{"key":"a/b%c","value":"odd"}]"#;
    assert_eq!(post(&c, save, body).await.status(), 204);
    for (path, want) in [
        ("p%2Bq", "\"plus\""),
        ("p%20q", "\"space\""),
        ("p+q", "\"space\""),
        ("a%2Fb%25c", "\"odd\""),
    ] {
        let r = c
            .get(d.url(&format!("/v1.0/state/statestore/{path}")))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.text().await.expect("body"), want, "{path}");
    }
    let r = c
        .delete(d.url("/v1.0/state/statestore/p%2Bq"))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 204);
    let r = c
        .get(d.url("/v1.0/state/statestore/p%20q"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        r.text().await.expect("body"),
        "\"space\"",
        "only p+q was deleted"
    );
}
