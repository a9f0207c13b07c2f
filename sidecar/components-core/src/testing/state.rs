//! One behavioural suite every state store must pass, whatever its backend. Each store's
//! tests call [`run`] against a real instance; a capability the store advertises is tested,
//! one it does not advertise must be refused with `NotSupported`.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::state::*;

fn set(key: &str, value: &[u8]) -> SetRequest {
    SetRequest {
        key: key.into(),
        value: Bytes::copy_from_slice(value),
        ..Default::default()
    }
}

fn set_json(key: &str, value: &[u8]) -> SetRequest {
    SetRequest {
        is_json: true,
        ..set(key, value)
    }
}

fn del(key: &str, etag: Option<String>) -> DeleteRequest {
    DeleteRequest {
        key: key.into(),
        etag,
        ..Default::default()
    }
}

async fn get(store: &dyn StateStore, key: &str) -> Option<Item> {
    store
        .get(&GetRequest {
            key: key.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e}"))
}

fn same_value(got: &[u8], want: &[u8]) -> bool {
    // JSON-native stores (PostgreSQL's jsonb) may re-serialise a JSON document.
    match (
        serde_json::from_slice::<Value>(got),
        serde_json::from_slice::<Value>(want),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => got == want,
    }
}

fn is_mismatch(r: Result<(), StateError>) -> bool {
    matches!(r, Err(StateError::EtagMismatch(_)))
}

/// Runs the whole suite; panics with a description of the first broken promise.
pub async fn run(store: &dyn StateStore) {
    let p = format!("conf-{}||", uuid::Uuid::new_v4().simple());
    let p = p.as_str();
    basic_crud(store, p).await;
    values_round_trip(store, p).await;
    etags(store, p).await;
    first_write(store, p).await;
    transactions(store, p).await;
    ttl(store, p).await;
    query(store, p).await;
}

async fn basic_crud(store: &dyn StateStore, p: &str) {
    let key = format!("{p}crud");
    assert!(
        get(store, &key).await.is_none(),
        "missing key must read as None"
    );
    store
        .set(&set(&key, br#"{"n":1}"#))
        .await
        .expect("first set");
    let item = get(store, &key).await.expect("value after set");
    assert!(same_value(&item.data, br#"{"n":1}"#));
    if store.features().etag {
        assert!(item.etag.is_some(), "ETAG stores return an etag on get");
    }
    store
        .set(&set(&key, br#"{"n":2}"#))
        .await
        .expect("overwrite");
    assert!(same_value(
        &get(store, &key).await.expect("value").data,
        br#"{"n":2}"#
    ));
    store.delete(&del(&key, None)).await.expect("delete");
    assert!(
        get(store, &key).await.is_none(),
        "deleted key must read as None"
    );
    store
        .delete(&del(&key, None))
        .await
        .expect("deleting a missing key is not an error");
}

async fn values_round_trip(store: &dyn StateStore, p: &str) {
    let cases: [&[u8]; 6] = [
        b"plain text",
        b"\x00\x01\xfe\xff binary",
        br#""a json string""#,
        b"42",
        b"[1,2,{\"x\":null}]",
        br#"{"b": 2,   "a": 1}"#,
    ];
    for (i, value) in cases.into_iter().enumerate() {
        // Opaque values come back byte for byte, whatever they look like.
        let key = format!("{p}value-{i}");
        store.set(&set(&key, value)).await.expect("set value");
        let got = get(store, &key).await.expect("value present");
        assert_eq!(got.data.as_ref(), value, "opaque value {i} changed");
        // JSON documents come back as the same JSON (jsonb may re-serialise them).
        let key = format!("{p}json-{i}");
        store
            .set(&set_json(&key, value))
            .await
            .expect("set json value");
        let got = get(store, &key).await.expect("json value present");
        assert!(
            same_value(&got.data, value),
            "json value {i} changed: {:?}",
            got.data
        );
    }
}

async fn etags(store: &dyn StateStore, p: &str) {
    if !store.features().etag {
        return;
    }
    let key = format!("{p}etag");
    store.set(&set(&key, b"\"v1\"")).await.expect("set v1");
    let e1 = get(store, &key)
        .await
        .and_then(|i| i.etag)
        .expect("etag v1");
    store
        .set(&SetRequest {
            etag: Some(e1.clone()),
            ..set(&key, b"\"v2\"")
        })
        .await
        .expect("set with matching etag");
    let e2 = get(store, &key)
        .await
        .and_then(|i| i.etag)
        .expect("etag v2");
    assert_ne!(e1, e2, "a write must change the etag");
    assert!(is_mismatch(
        store
            .set(&SetRequest {
                etag: Some(e1.clone()),
                ..set(&key, b"\"v3\"")
            })
            .await
    ));
    assert!(
        same_value(&get(store, &key).await.expect("value").data, b"\"v2\""),
        "stale write applied"
    );
    let garbage = store
        .set(&SetRequest {
            etag: Some("not-an-etag".into()),
            ..set(&key, b"1")
        })
        .await;
    assert!(
        matches!(
            garbage,
            Err(StateError::EtagMismatch(_) | StateError::EtagInvalid(_))
        ),
        "garbage etag accepted: {garbage:?}"
    );
    let missing = format!("{p}etag-missing");
    assert!(is_mismatch(
        store
            .set(&SetRequest {
                etag: Some(e2.clone()),
                ..set(&missing, b"1")
            })
            .await
    ));
    assert!(get(store, &missing).await.is_none());

    assert!(
        is_mismatch(store.delete(&del(&key, Some(e1))).await),
        "stale delete must fail"
    );
    assert!(
        get(store, &key).await.is_some(),
        "stale delete removed the value"
    );
    store
        .delete(&del(&key, Some(e2)))
        .await
        .expect("delete with matching etag");
    assert!(get(store, &key).await.is_none());
}

async fn first_write(store: &dyn StateStore, p: &str) {
    if !store.features().etag {
        return;
    }
    let key = format!("{p}first");
    let fw = |v: &[u8]| SetRequest {
        concurrency: Concurrency::FirstWrite,
        ..set(&key, v)
    };
    store
        .set(&fw(b"1"))
        .await
        .expect("first-write on a new key");
    assert!(
        is_mismatch(store.set(&fw(b"2")).await),
        "first-write overwrote without etag"
    );
    let etag = get(store, &key).await.and_then(|i| i.etag);
    store
        .set(&SetRequest { etag, ..fw(b"3") })
        .await
        .expect("first-write with etag");
    assert!(same_value(
        &get(store, &key).await.expect("value").data,
        b"3"
    ));
}

async fn transactions(store: &dyn StateStore, p: &str) {
    let (a, b, c) = (format!("{p}tx-a"), format!("{p}tx-b"), format!("{p}tx-c"));
    if !store.features().transactional {
        let r = store.transact(&[Operation::Set(set(&a, b"1"))]).await;
        assert!(matches!(r, Err(StateError::NotSupported(_))));
        return;
    }
    store.set(&set(&c, b"\"old\"")).await.expect("seed");
    store
        .transact(&[
            Operation::Set(set(&a, b"\"a1\"")),
            Operation::Set(set(&b, b"\"b1\"")),
            Operation::Delete(del(&c, None)),
        ])
        .await
        .expect("transaction");
    assert!(same_value(
        &get(store, &a).await.expect("a").data,
        b"\"a1\""
    ));
    assert!(same_value(
        &get(store, &b).await.expect("b").data,
        b"\"b1\""
    ));
    assert!(get(store, &c).await.is_none());

    // Upsert then delete of the same key within one transaction.
    store
        .transact(&[
            Operation::Set(set(&c, b"1")),
            Operation::Delete(del(&c, None)),
        ])
        .await
        .expect("set+delete");
    assert!(get(store, &c).await.is_none());

    if store.features().etag {
        let stale = get(store, &a).await.and_then(|i| i.etag);
        store.set(&set(&a, b"\"a2\"")).await.expect("bump a");
        let r = store
            .transact(&[
                Operation::Set(set(&b, b"\"b2\"")),
                Operation::Delete(del(&c, None)),
                Operation::Set(SetRequest {
                    etag: stale,
                    ..set(&a, b"\"a3\"")
                }),
            ])
            .await;
        assert!(is_mismatch(r), "transaction with a stale etag must fail");
        assert!(
            same_value(&get(store, &b).await.expect("b").data, b"\"b1\""),
            "half-written tx"
        );
        assert!(same_value(
            &get(store, &a).await.expect("a").data,
            b"\"a2\""
        ));
    }
}

async fn ttl(store: &dyn StateStore, p: &str) {
    if !store.features().ttl {
        return;
    }
    let key = format!("{p}ttl");
    let keep = format!("{p}ttl-keep");
    store
        .set(&SetRequest {
            ttl: Ttl::After(Duration::from_secs(1)),
            ..set(&key, b"\"short\"")
        })
        .await
        .expect("set with ttl");
    store.set(&set(&keep, b"1")).await.expect("set without ttl");
    let item = get(store, &key).await.expect("readable before expiry");
    // Stores may report the expiry (Dapr's Redis store does not); if they do, it is right.
    if let Some(at) = item.expires_at {
        let left = at
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        assert!(
            left <= Duration::from_secs(1),
            "reported expiry is too late: {left:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(get(store, &key).await.is_none(), "value outlived its ttl");
    assert!(
        get(store, &keep).await.is_some(),
        "value without ttl expired"
    );
}

async fn query(store: &dyn StateStore, p: &str) {
    let q = Query::parse(
        br#"{"filter":{"EQ":{"state":"CA"}},"sort":[{"key":"person.org"}],"page":{"limit":2}}"#,
    )
    .expect("query parses");
    let qp = format!("{p}q/");
    if !store.features().query {
        assert!(matches!(
            store.query(&qp, &q).await,
            Err(StateError::NotSupported(_))
        ));
        return;
    }
    let docs = [
        ("1", r#"{"state":"CA","person":{"org":"Dev"}}"#),
        ("2", r#"{"state":"WA","person":{"org":"Dev"}}"#),
        ("3", r#"{"state":"CA","person":{"org":"Admin"}}"#),
        ("4", r#"{"state":"CA","person":{"org":"Ops"}}"#),
    ];
    for (k, v) in docs {
        store
            .set(&set_json(&format!("{qp}{k}"), v.as_bytes()))
            .await
            .expect("seed query doc");
    }
    store
        .set(&set_json(&format!("{p}outside"), br#"{"state":"CA"}"#))
        .await
        .expect("seed");
    let page1 = store.query(&qp, &q).await.expect("query page 1");
    let keys: Vec<_> = page1
        .results
        .iter()
        .map(|r| r.key.trim_start_matches(&qp))
        .collect();
    assert_eq!(keys, ["3", "1"], "filter+sort+limit");
    assert!(!page1.token.is_empty(), "a next-page token");
    let q2 = Query {
        offset: page1.token.parse().expect("numeric token"),
        ..q
    };
    let page2 = store.query(&qp, &q2).await.expect("query page 2");
    let keys: Vec<_> = page2
        .results
        .iter()
        .map(|r| r.key.trim_start_matches(&qp))
        .collect();
    assert_eq!(keys, ["4"]);
}
