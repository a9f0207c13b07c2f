"""State over the plain HTTP API (requests), cross-checked against the SDK (gRPC).

Upstream HTTP semantics (dapr/dapr pkg/api/http/http.go):
  GET    /v1.0/state/{store}/{key}          200 + raw value + ETag header; 204 when missing
  POST   /v1.0/state/{store}                JSON list of {key, value, etag?, metadata?}; 204
  DELETE /v1.0/state/{store}/{key}          If-Match = etag; 204
  POST   /v1.0/state/{store}/bulk           {"keys": [...], "parallelism": n} ->
                                            200 JSON list of {key, data?, etag?, error?}
  POST   /v1.0/state/{store}/transaction    {"operations": [{"operation", "request"}]}; 204
"""

import json

from _compat import wait_until


def test_healthz_is_204(http):
    r = http.get("/v1.0/healthz")
    assert r.status_code == 204, r.text


def test_outbound_healthz_is_204(http):
    # DaprClient() blocks on this endpoint (DaprHealth.wait_for_sidecar) before every connect.
    r = http.get("/v1.0/healthz/outbound")
    assert r.status_code == 204, r.text


def test_get_missing_key_is_204_with_empty_body(http, store, kp):
    r = http.get(f"/v1.0/state/{store}/{kp}-missing")

    assert r.status_code == 204, r.text
    assert r.content == b""


def test_save_get_delete(http, client, store, kp):
    key = f"{kp}-doc"
    doc = {"name": "ünïcode", "n": 42, "nested": {"list": [1, 2, 3]}, "none": None}

    r = http.post(f"/v1.0/state/{store}", json=[{"key": key, "value": doc}])
    assert r.status_code == 204, r.text

    r = http.get(f"/v1.0/state/{store}/{key}")
    assert r.status_code == 200, r.text
    assert r.json() == doc
    assert r.headers.get("ETag")

    # The same value through gRPC: the JSON document as bytes.
    assert json.loads(client.get_state(store, key).data) == doc

    r = http.delete(f"/v1.0/state/{store}/{key}")
    assert r.status_code == 204, r.text
    assert http.get(f"/v1.0/state/{store}/{key}").status_code == 204


def test_put_is_accepted_for_save(http, store, kp):
    key = f"{kp}-put"
    r = http.put(f"/v1.0/state/{store}", json=[{"key": key, "value": {"via": "PUT"}}])

    assert r.status_code == 204, r.text
    assert http.get(f"/v1.0/state/{store}/{key}").json() == {"via": "PUT"}


def test_value_saved_over_grpc_is_served_raw_over_http(http, client, store, kp):
    key = f"{kp}-raw"
    client.save_state(store, key, b"\x00raw\xffbytes")

    r = http.get(f"/v1.0/state/{store}/{key}")

    assert r.status_code == 200
    assert r.content == b"\x00raw\xffbytes"


def test_save_multiple_items_in_one_request(http, store, kp):
    items = [{"key": f"{kp}-{i}", "value": {"i": i}} for i in range(3)]

    r = http.post(f"/v1.0/state/{store}", json=items)

    assert r.status_code == 204, r.text
    for i in range(3):
        assert http.get(f"/v1.0/state/{store}/{kp}-{i}").json() == {"i": i}


def test_bulk_get(http, client, store, kp):
    saved = {f"{kp}-a": {"v": "a"}, f"{kp}-b": [1, "two", None], f"{kp}-c": "text"}
    r = http.post(f"/v1.0/state/{store}", json=[{"key": k, "value": v} for k, v in saved.items()])
    assert r.status_code == 204, r.text
    missing = f"{kp}-missing"

    r = http.post(
        f"/v1.0/state/{store}/bulk", json={"keys": list(saved) + [missing], "parallelism": 2}
    )

    assert r.status_code == 200, r.text
    items = r.json()
    assert isinstance(items, list)
    assert len(items) == 4
    by_key = {item["key"]: item for item in items}
    assert set(by_key) == set(saved) | {missing}
    for key, value in saved.items():
        assert by_key[key]["data"] == value, key
        assert isinstance(by_key[key].get("etag"), str) and by_key[key]["etag"]
        assert by_key[key]["etag"] == client.get_state(store, key).etag
        assert not by_key[key].get("error")
    assert by_key[missing].get("data") is None, by_key[missing]
    assert not by_key[missing].get("error")


def test_bulk_get_with_no_keys_is_empty_list(http, store):
    r = http.post(f"/v1.0/state/{store}/bulk", json={"keys": []})

    assert r.status_code == 200, r.text
    assert r.json() == []


def test_transaction(http, client, store, kp):
    keep, new, gone = f"{kp}-keep", f"{kp}-new", f"{kp}-gone"
    client.save_state(store, gone, "bye")
    client.save_state(store, keep, "old")

    r = http.post(
        f"/v1.0/state/{store}/transaction",
        json={
            "operations": [
                {"operation": "upsert", "request": {"key": keep, "value": {"v": "kept"}}},
                {"operation": "upsert", "request": {"key": new, "value": {"v": "new"}}},
                {"operation": "delete", "request": {"key": gone}},
            ]
        },
    )

    assert r.status_code == 204, r.text
    assert http.get(f"/v1.0/state/{store}/{keep}").json() == {"v": "kept"}
    assert json.loads(client.get_state(store, new).data) == {"v": "new"}
    assert client.get_state(store, gone).data == b""


def test_transaction_with_stale_etag_fails(http, client, store, kp):
    key = f"{kp}-k"
    client.save_state(store, key, "v1")
    stale = client.get_state(store, key).etag
    client.save_state(store, key, "v2")

    r = http.post(
        f"/v1.0/state/{store}/transaction",
        json={"operations": [{"operation": "upsert", "request": {"key": key, "value": 3, "etag": stale}}]},
    )

    assert r.status_code == 500, r.text
    assert r.json()["errorCode"] == "ERR_STATE_TRANSACTION"
    assert client.get_state(store, key).data == b"v2"


def test_transaction_with_unknown_operation_is_400(http, store, kp):
    r = http.post(
        f"/v1.0/state/{store}/transaction",
        json={"operations": [{"operation": "merge", "request": {"key": f"{kp}-k", "value": 1}}]},
    )

    assert r.status_code == 400, r.text
    assert r.json()["errorCode"] == "ERR_NOT_SUPPORTED_STATE_OPERATION"


def test_ttl_via_metadata_query_parameter(http, client, store, kp):
    key = f"{kp}-ttl"
    r = http.post(
        f"/v1.0/state/{store}",
        params={"metadata.ttlInSeconds": "1"},
        json=[{"key": key, "value": "brief"}],
    )
    assert r.status_code == 204, r.text
    assert http.get(f"/v1.0/state/{store}/{key}").status_code == 200

    assert wait_until(lambda: http.get(f"/v1.0/state/{store}/{key}").status_code == 204, timeout=5.0)
