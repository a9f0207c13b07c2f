//! Our errors against Dapr's own: the same malformed or refused requests go to one of our
//! `daprd`s and to Dapr's (built from its Go module, `DAPR_DAPRD_BIN`), both on an
//! in-memory state store, and the answers must agree: HTTP status and `errorCode`, gRPC
//! code and message. Each mismatch is listed with both answers.
//!
//! Left out on purpose: the query API on `state.in-memory`, which ours serves and Dapr's
//! in-memory store refuses (`ERR_STATE_STORE_NOT_SUPPORTED`); and `ttlInSeconds`, which
//! Dapr's in-memory store reads in its own way (no range check, `strconv.Atoi`'s words)
//! while ours reads it as Dapr's shared parser, which its other stores use, does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dapr::dapr::proto::common::v1::StateItem;
use dapr::dapr::proto::runtime::v1 as pb;
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use serde_json::Value;
use test_support::{Process, free_port};

fn theirs() -> PathBuf {
    PathBuf::from(std::env::var_os("DAPR_DAPRD_BIN").unwrap_or_else(|| {
        panic!("DAPR_DAPRD_BIN is not set: build Dapr's daprd with tests/mixed/build-dapr-daprd.sh and export its path")
    }))
}

struct Sidecar {
    _process: Process,
    http: u16,
    grpc: u16,
}

async fn start(bin: &Path, app_id: &str, resources: &Path) -> Sidecar {
    for _ in 0..4 {
        if let Some(sidecar) = try_start(bin, app_id, resources).await {
            return sidecar;
        }
    }
    panic!("{app_id} could not find free ports in four tries");
}

/// One start; `None` when a port was taken under it.
async fn try_start(bin: &Path, app_id: &str, resources: &Path) -> Option<Sidecar> {
    let (http, grpc, internal, metrics) = (free_port(), free_port(), free_port(), free_port());
    let args: Vec<String> = [
        "--app-id",
        app_id,
        "--dapr-http-port",
        &http.to_string(),
        "--dapr-grpc-port",
        &grpc.to_string(),
        "--dapr-internal-grpc-port",
        &internal.to_string(),
        "--metrics-port",
        &metrics.to_string(),
        "--dapr-listen-addresses",
        "127.0.0.1",
        "--resources-path",
        &resources.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut process = Process::spawn(bin, &args, &[]);
    let url = format!("http://127.0.0.1:{http}/v1.0/healthz");
    if !process
        .answers_unless_port_lost(&url, 204, Duration::from_secs(60))
        .await
    {
        return None;
    }
    Some(Sidecar {
        _process: process,
        http,
        grpc,
    })
}

/// One HTTP request of the table.
struct Case {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
}

const fn case(
    what: &'static str,
    method: &'static str,
    path: &'static str,
    body: &'static str,
) -> Case {
    Case {
        what,
        method,
        path,
        headers: &[],
        body,
    }
}

const HTTP_CASES: &[Case] = &[
    case("get from an unknown store", "GET", "/v1.0/state/nope/k", ""),
    case("save to an unknown store", "POST", "/v1.0/state/nope", "[]"),
    case(
        "save a body that is not JSON",
        "POST",
        "/v1.0/state/statestore",
        "not json",
    ),
    case(
        "save an object, not a list",
        "POST",
        "/v1.0/state/statestore",
        "{}",
    ),
    case("save nothing", "POST", "/v1.0/state/statestore", "[]"),
    case(
        "save an illegal key",
        "POST",
        "/v1.0/state/statestore",
        r#"[{"key":"a||b","value":1}]"#,
    ),
    case(
        "save with an empty key",
        "POST",
        "/v1.0/state/statestore",
        r#"[{"key":"","value":1}]"#,
    ),
    case(
        "save with a stale etag",
        "POST",
        "/v1.0/state/statestore",
        r#"[{"key":"fresh","value":1,"etag":"99"}]"#,
    ),
    case(
        "save with an unknown concurrency",
        "POST",
        "/v1.0/state/statestore",
        r#"[{"key":"k","value":1,"options":{"concurrency":"bogus"}}]"#,
    ),
    case(
        "save with an unknown consistency",
        "POST",
        "/v1.0/state/statestore",
        r#"[{"key":"k","value":1,"options":{"consistency":"bogus"}}]"#,
    ),
    case(
        "get a missing key",
        "GET",
        "/v1.0/state/statestore/missing",
        "",
    ),
    case(
        "get an illegal key",
        "GET",
        "/v1.0/state/statestore/a||b",
        "",
    ),
    case(
        "get with an unknown consistency",
        "GET",
        "/v1.0/state/statestore/k?consistency=bogus",
        "",
    ),
    Case {
        what: "delete with a stale etag",
        method: "DELETE",
        path: "/v1.0/state/statestore/fresh2",
        headers: &[("If-Match", "99")],
        body: "",
    },
    case(
        "delete from an unknown store",
        "DELETE",
        "/v1.0/state/nope/k",
        "",
    ),
    case(
        "bulk get, body not JSON",
        "POST",
        "/v1.0/state/statestore/bulk",
        "nope",
    ),
    case(
        "bulk get from an unknown store",
        "POST",
        "/v1.0/state/nope/bulk",
        r#"{"keys":["a"]}"#,
    ),
    case(
        "transaction, body not JSON",
        "POST",
        "/v1.0/state/statestore/transaction",
        "nope",
    ),
    case(
        "transaction with an unknown operation",
        "POST",
        "/v1.0/state/statestore/transaction",
        r#"{"operations":[{"operation":"bogus","request":{"key":"k"}}]}"#,
    ),
    case(
        "transaction on an unknown store",
        "POST",
        "/v1.0/state/nope/transaction",
        r#"{"operations":[]}"#,
    ),
    case(
        "invoke an app nobody serves",
        "GET",
        "/v1.0/invoke/nobody/method/x",
        "",
    ),
    case("an unknown API path", "GET", "/v1.0/nothing-here", ""),
    case(
        "save a body that is not JSON to an unknown store",
        "POST",
        "/v1.0/state/nope",
        "not json",
    ),
    case(
        "save two items, bad options then an illegal key",
        "POST",
        "/v1.0/state/statestore",
        r#"[{"key":"k","value":1,"options":{"concurrency":"bogus"}},{"key":"a||b","value":1}]"#,
    ),
    case(
        "delete with an unknown consistency",
        "DELETE",
        "/v1.0/state/statestore/k?consistency=bogus",
        "",
    ),
    case(
        "delete with an unknown concurrency",
        "DELETE",
        "/v1.0/state/statestore/k?concurrency=bogus",
        "",
    ),
    case(
        "delete from an unknown store with an unknown consistency",
        "DELETE",
        "/v1.0/state/nope/k?consistency=bogus",
        "",
    ),
    case(
        "bulk get with keys that are not a list",
        "POST",
        "/v1.0/state/statestore/bulk",
        r#"{"keys":"a"}"#,
    ),
    case(
        "bulk get with an illegal key",
        "POST",
        "/v1.0/state/statestore/bulk",
        r#"{"keys":["a||b"]}"#,
    ),
    case(
        "transaction upsert without a key",
        "POST",
        "/v1.0/state/statestore/transaction",
        r#"{"operations":[{"operation":"upsert","request":{"value":1}}]}"#,
    ),
    case(
        "transaction delete with a stale etag",
        "POST",
        "/v1.0/state/statestore/transaction",
        r#"{"operations":[{"operation":"delete","request":{"key":"nokey","etag":"9"}}]}"#,
    ),
    case(
        "transaction with an illegal key",
        "POST",
        "/v1.0/state/statestore/transaction",
        r#"{"operations":[{"operation":"upsert","request":{"key":"a||b","value":1}}]}"#,
    ),
    case(
        "save two items, a stale etag and a bad option",
        "POST",
        "/v1.0/state/statestore",
        r#"[{"key":"e1","value":1,"etag":"9"},{"key":"e2","value":1,"options":{"concurrency":"bogus"}}]"#,
    ),
    case(
        "save two items, a bad option and a stale etag",
        "POST",
        "/v1.0/state/statestore",
        r#"[{"key":"e3","value":1,"options":{"concurrency":"bogus"}},{"key":"e4","value":1,"etag":"9"}]"#,
    ),
    case(
        "transaction upsert with a stale etag",
        "POST",
        "/v1.0/state/statestore/transaction",
        r#"{"operations":[{"operation":"upsert","request":{"key":"e5","value":1,"etag":"9"}}]}"#,
    ),
    case(
        "set a metadata attribute",
        "PUT",
        "/v1.0/metadata/color",
        "blue",
    ),
    case("invoke with no app id", "GET", "/v1.0/invoke//method/x", ""),
    case("get an empty key", "GET", "/v1.0/state/statestore/", ""),
];

/// Status and `errorCode` of an answer, with its body for the report.
async fn ask(c: &reqwest::Client, port: u16, case: &Case) -> (u16, String, String) {
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).expect("method");
    let mut req = c
        .request(method, format!("http://127.0.0.1:{port}{}", case.path))
        .body(case.body);
    if !case.body.is_empty() {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in case.headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    let code = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["errorCode"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, code, body)
}

/// gRPC calls of the table: code and message.
async fn grpc_answers(port: u16) -> Vec<(&'static str, String)> {
    let mut c = DaprClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .expect("connect");
    let show = |r: Result<(), tonic::Status>| match r {
        Ok(()) => "OK".to_string(),
        Err(s) => format!("{:?}: {}", s.code(), s.message()),
    };
    let item = |key: &str, etag: Option<&str>| StateItem {
        key: key.into(),
        value: b"1".to_vec(),
        etag: etag.map(|e| dapr::dapr::proto::common::v1::Etag { value: e.into() }),
        ..Default::default()
    };
    let mut out = Vec::new();
    let r = c
        .get_state(pb::GetStateRequest {
            store_name: "nope".into(),
            key: "k".into(),
            ..Default::default()
        })
        .await;
    out.push(("GetState, unknown store", show(r.map(|_| ()))));
    let r = c
        .get_state(pb::GetStateRequest {
            store_name: "statestore".into(),
            key: "a||b".into(),
            ..Default::default()
        })
        .await;
    out.push(("GetState, illegal key", show(r.map(|_| ()))));
    let r = c
        .save_state(pb::SaveStateRequest {
            store_name: "nope".into(),
            states: vec![item("k", None)],
        })
        .await;
    out.push(("SaveState, unknown store", show(r.map(|_| ()))));
    let r = c
        .save_state(pb::SaveStateRequest {
            store_name: "statestore".into(),
            states: vec![item("a||b", None)],
        })
        .await;
    out.push(("SaveState, illegal key", show(r.map(|_| ()))));
    let r = c
        .save_state(pb::SaveStateRequest {
            store_name: "statestore".into(),
            states: vec![item("fresh-grpc", Some("99"))],
        })
        .await;
    out.push(("SaveState, stale etag", show(r.map(|_| ()))));
    let r = c
        .delete_state(pb::DeleteStateRequest {
            store_name: "nope".into(),
            key: "k".into(),
            ..Default::default()
        })
        .await;
    out.push(("DeleteState, unknown store", show(r.map(|_| ()))));
    let r = c
        .execute_state_transaction(pb::ExecuteStateTransactionRequest {
            store_name: "statestore".into(),
            operations: vec![pb::TransactionalStateOperation {
                operation_type: "bogus".into(),
                request: Some(item("k", None)),
            }],
            ..Default::default()
        })
        .await;
    out.push((
        "ExecuteStateTransaction, unknown operation",
        show(r.map(|_| ())),
    ));
    let r = c
        .invoke_service(pb::InvokeServiceRequest {
            id: "nobody".into(),
            message: Some(dapr::dapr::proto::common::v1::InvokeRequest {
                method: "x".into(),
                ..Default::default()
            }),
        })
        .await;
    out.push(("InvokeService, app nobody serves", show(r.map(|_| ()))));
    let r = c
        .get_bulk_state(pb::GetBulkStateRequest {
            store_name: "nope".into(),
            keys: vec!["a".into()],
            ..Default::default()
        })
        .await;
    out.push(("GetBulkState, unknown store", show(r.map(|_| ()))));
    let r = c
        .execute_state_transaction(pb::ExecuteStateTransactionRequest {
            store_name: "nope".into(),
            operations: vec![],
            ..Default::default()
        })
        .await;
    out.push((
        "ExecuteStateTransaction, unknown store",
        show(r.map(|_| ())),
    ));
    let r = c
        .query_state_alpha1(pb::QueryStateRequest {
            store_name: "nope".into(),
            query: "{}".into(),
            ..Default::default()
        })
        .await;
    out.push(("QueryStateAlpha1, unknown store", show(r.map(|_| ()))));
    let r = c
        .delete_state(pb::DeleteStateRequest {
            store_name: "statestore".into(),
            key: "nokey".into(),
            etag: Some(dapr::dapr::proto::common::v1::Etag { value: "9".into() }),
            ..Default::default()
        })
        .await;
    out.push(("DeleteState, stale etag", show(r.map(|_| ()))));
    out
}

fn code_of(answer: &str) -> String {
    answer.split(':').next().unwrap_or_default().to_string()
}

fn resources(dir: &Path) -> PathBuf {
    let path = dir.join("resources");
    std::fs::create_dir_all(&path).expect("dir");
    std::fs::write(
        path.join("statestore.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: statestore\nspec:\n  type: state.in-memory\n  version: v1\n",
    )
    .expect("component");
    path
}

#[tokio::test]
async fn our_errors_are_daprs() {
    let dir = tempfile::tempdir().expect("dir");
    let res = resources(dir.path());
    let ours = start(&test_support::binary("daprd"), "ours", &res).await;
    let theirs = start(&theirs(), "theirs", &res).await;
    let c = reqwest::Client::new();
    let mut mismatches = Vec::new();
    for case in HTTP_CASES {
        let a = ask(&c, ours.http, case).await;
        let b = ask(&c, theirs.http, case).await;
        if (a.0, &a.1) != (b.0, &b.1) {
            mismatches.push(format!(
                "HTTP {} ({} {}):\n  ours:   {} {} {}\n  Dapr's: {} {} {}",
                case.what, case.method, case.path, a.0, a.1, a.2, b.0, b.1, b.2
            ));
        }
    }
    let ours_grpc = grpc_answers(ours.grpc).await;
    let theirs_grpc = grpc_answers(theirs.grpc).await;
    for ((what, a), (_, b)) in ours_grpc.iter().zip(&theirs_grpc) {
        // The app id appears in some messages; each sidecar has its own. Dapr's mDNS
        // resolver words a miss two ways, depending on which of its timers fires first,
        // so for an unknown app only the code is compared.
        let (a, b) = if what.starts_with("InvokeService") {
            (code_of(a), code_of(b))
        } else {
            (a.replace("ours", "ID"), b.replace("theirs", "ID"))
        };
        if a != b {
            mismatches.push(format!("gRPC {what}:\n  ours:   {a}\n  Dapr's: {b}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} answer(s) differ from Dapr's:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// What a sidecar gives back for values written every way: HTTP saves of JSON values,
/// gRPC saves and transaction upserts of raw bytes, read over HTTP (one and bulk) and gRPC.
async fn read_back(http: u16, grpc: u16) -> Vec<(&'static str, String)> {
    let c = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{http}/v1.0/state/statestore");
    let r = c
        .post(&base)
        .header("content-type", "application/json")
        .body(r#"[{"key":"obj","value":{"a":1, "b":[true,null]}},{"key":"text","value":"hi"},{"key":"num","value":42}]"#)
        .send()
        .await
        .expect("save");
    assert_eq!(r.status(), 204);
    let mut g = DaprClient::connect(format!("http://127.0.0.1:{grpc}"))
        .await
        .expect("connect");
    g.save_state(pb::SaveStateRequest {
        store_name: "statestore".into(),
        states: vec![StateItem {
            key: "raw".into(),
            value: br#"{"c":3}"#.to_vec(),
            ..Default::default()
        }],
    })
    .await
    .expect("grpc save");
    g.execute_state_transaction(pb::ExecuteStateTransactionRequest {
        store_name: "statestore".into(),
        operations: vec![pb::TransactionalStateOperation {
            operation_type: "upsert".into(),
            request: Some(StateItem {
                key: "tx".into(),
                value: br#"{"d":4}"#.to_vec(),
                ..Default::default()
            }),
        }],
        ..Default::default()
    })
    .await
    .expect("grpc transaction");
    let mut out = Vec::new();
    for key in ["obj", "text", "num", "raw", "tx"] {
        let r = c.get(format!("{base}/{key}")).send().await.expect("get");
        let status = r.status().as_u16();
        let etag = r.headers().contains_key("etag");
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = r.text().await.unwrap_or_default();
        out.push((
            "HTTP GET",
            format!("{key}: {status} etag={etag} type={ct} {body}"),
        ));
        let got = g
            .get_state(pb::GetStateRequest {
                store_name: "statestore".into(),
                key: key.into(),
                ..Default::default()
            })
            .await
            .expect("grpc get")
            .into_inner();
        out.push((
            "gRPC GetState",
            format!(
                "{key}: {} etag={}",
                String::from_utf8_lossy(&got.data),
                !got.etag.is_empty()
            ),
        ));
    }
    let r = c
        .post(format!("{base}/bulk"))
        .header("content-type", "application/json")
        .body(r#"{"keys":["obj","text","missing","raw"]}"#)
        .send()
        .await
        .expect("bulk");
    let mut items: Vec<Value> = r.json().await.expect("bulk json");
    for item in &mut items {
        // ETags are each store's own numbering; that there is one is what counts.
        if let Some(e) = item.get_mut("etag") {
            *e = Value::from(!e.is_null());
        }
    }
    items.sort_by_key(|i| i["key"].to_string());
    out.push((
        "HTTP bulk get",
        serde_json::to_string(&items).unwrap_or_default(),
    ));
    out
}

#[tokio::test]
async fn stored_values_read_back_as_daprs() {
    let dir = tempfile::tempdir().expect("dir");
    let res = resources(dir.path());
    let ours = start(&test_support::binary("daprd"), "ours", &res).await;
    let theirs = start(&theirs(), "theirs", &res).await;
    let a = read_back(ours.http, ours.grpc).await;
    let b = read_back(theirs.http, theirs.grpc).await;
    assert_eq!((a.len(), b.len()), (11, 11));
    assert!(
        a[0].1
            .starts_with("obj: 200 etag=true type=application/json {\"a\":1"),
        "{a:#?}"
    );
    let mismatches: Vec<String> = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x.1 != y.1)
        .map(|(x, y)| format!("{}:\n  ours:   {}\n  Dapr's: {}", x.0, x.1, y.1))
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} read(s) differ from Dapr's:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
