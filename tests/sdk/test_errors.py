"""Error surfaces: gRPC status codes and rich details as the SDK exposes them, HTTP error JSON.

Upstream reference (dapr/dapr pkg/api/errors/state.go, pkg/api/grpc/grpc.go, pkg/api/http/http.go):
  * unknown store: gRPC INVALID_ARGUMENT "state store <name> is not found", ErrorInfo
    reason DAPR_STATE_NOT_FOUND / domain dapr.io; HTTP 400 errorCode ERR_STATE_STORE_NOT_FOUND
  * etag mismatch: gRPC ABORTED with ErrorInfo reason ERR_STATE_SAVE / ERR_STATE_DELETE;
    HTTP 409 with errorCode ERR_STATE_SAVE / ERR_STATE_DELETE
  * failed transaction: gRPC INTERNAL, ErrorInfo reason ERR_STATE_TRANSACTION
  * undecodable HTTP body: 400 ERR_MALFORMED_REQUEST
"""

import grpc
import pytest
from dapr.clients.grpc._request import TransactionalStateOperation
from dapr.clients.grpc._state import StateItem

from _compat import expect_grpc_error

UNKNOWN = "no-such-store"

SDK_CALLS_ON_UNKNOWN_STORE = {
    "get_state": lambda c: c.get_state(UNKNOWN, "k"),
    "save_state": lambda c: c.save_state(UNKNOWN, "k", "v"),
    "delete_state": lambda c: c.delete_state(UNKNOWN, "k"),
    "get_bulk_state": lambda c: c.get_bulk_state(UNKNOWN, ["k1", "k2"]),
    "save_bulk_state": lambda c: c.save_bulk_state(UNKNOWN, [StateItem(key="k", value="v")]),
    "execute_state_transaction": lambda c: c.execute_state_transaction(
        UNKNOWN, [TransactionalStateOperation(key="k", data="v")]
    ),
    "query_state": lambda c: c.query_state(UNKNOWN, '{"filter": {"EQ": {"a": "b"}}}'),
}


def _error_info(err):
    info = err.status_details().error_info
    assert info is not None, f"no google.rpc.ErrorInfo in the status details of: {err.details()!r}"
    return info


# ---- unknown store --------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("call", SDK_CALLS_ON_UNKNOWN_STORE, ids=str)
def test_unknown_store_is_invalid_argument(client, call):
    with pytest.raises(Exception) as excinfo:
        SDK_CALLS_ON_UNKNOWN_STORE[call](client)

    err = expect_grpc_error(excinfo, grpc.StatusCode.INVALID_ARGUMENT)
    assert UNKNOWN in err.details(), err.details()
    assert "not found" in err.details(), err.details()


def test_unknown_store_error_info(client):
    with pytest.raises(Exception) as excinfo:
        client.get_state(UNKNOWN, "k")

    err = expect_grpc_error(excinfo, grpc.StatusCode.INVALID_ARGUMENT)
    assert err.details() == f"state store {UNKNOWN} is not found"
    assert err.error_code() == "DAPR_STATE_NOT_FOUND"
    assert _error_info(err).get("domain") == "dapr.io"


def test_http_get_on_unknown_store(http):
    r = http.get(f"/v1.0/state/{UNKNOWN}/k")

    assert r.status_code == 400, r.text
    body = r.json()
    assert body["errorCode"] == "ERR_STATE_STORE_NOT_FOUND"
    assert UNKNOWN in body["message"]


@pytest.mark.parametrize(
    "method, path, payload",
    [
        ("POST", f"/v1.0/state/{UNKNOWN}", [{"key": "k", "value": 1}]),
        ("DELETE", f"/v1.0/state/{UNKNOWN}/k", None),
        ("POST", f"/v1.0/state/{UNKNOWN}/bulk", {"keys": ["k"]}),
        ("POST", f"/v1.0/state/{UNKNOWN}/transaction", {"operations": []}),
    ],
    ids=["save", "delete", "bulk", "transaction"],
)
def test_http_other_verbs_on_unknown_store(http, method, path, payload):
    r = http.request(method, path, json=payload)

    assert r.status_code == 400, r.text
    assert r.json()["errorCode"] == "ERR_STATE_STORE_NOT_FOUND"


# ---- malformed requests ---------------------------------------------------------------------


def test_http_malformed_json_body(http):
    r = http.post(
        "/v1.0/state/mem-store",
        data=b'[{"key": "k", "value": ',
        headers={"Content-Type": "application/json"},
    )

    assert r.status_code == 400, r.text
    assert r.json()["errorCode"] == "ERR_MALFORMED_REQUEST"


def test_http_save_body_that_is_not_a_list(http):
    r = http.post("/v1.0/state/mem-store", json={"key": "k", "value": "v"})

    assert r.status_code == 400, r.text
    assert r.json()["errorCode"] == "ERR_MALFORMED_REQUEST"


def test_http_save_without_key(http):
    r = http.post("/v1.0/state/mem-store", json=[{"value": "v"}])

    assert r.status_code == 400, r.text
    assert r.json()["errorCode"] == "ERR_MALFORMED_REQUEST"


def test_http_bulk_get_malformed_body(http):
    r = http.post("/v1.0/state/mem-store/bulk", data=b"{not json", headers={"Content-Type": "application/json"})

    assert r.status_code == 400, r.text
    assert r.json()["errorCode"] == "ERR_MALFORMED_REQUEST"


def test_grpc_save_with_empty_key(client):
    with pytest.raises(Exception) as excinfo:
        client.save_state("mem-store", "", "v")

    expect_grpc_error(excinfo, grpc.StatusCode.INVALID_ARGUMENT)


# ---- etag errors ----------------------------------------------------------------------------


def _stale_etag(client, store, key):
    """Leaves `key` = "v2" and returns an etag that was valid for "v1"."""
    client.save_state(store, key, "v1")
    stale = client.get_state(store, key).etag
    client.save_state(store, key, "v2")
    return stale


def test_grpc_stale_etag_save_error_details(client, store, kp):
    key = f"{kp}-k"
    stale = _stale_etag(client, store, key)

    with pytest.raises(Exception) as excinfo:
        client.save_state(store, key, "v3", etag=stale)

    err = expect_grpc_error(excinfo, grpc.StatusCode.ABORTED)
    assert err.error_code() == "ERR_STATE_SAVE"
    assert store in err.details(), err.details()


def test_grpc_stale_etag_delete_error_details(client, store, kp):
    key = f"{kp}-k"
    stale = _stale_etag(client, store, key)

    with pytest.raises(Exception) as excinfo:
        client.delete_state(store, key, etag=stale)

    err = expect_grpc_error(excinfo, grpc.StatusCode.ABORTED)
    assert err.error_code() == "ERR_STATE_DELETE"


def test_grpc_failed_transaction_error_details(client, store, kp):
    key = f"{kp}-k"
    stale = _stale_etag(client, store, key)

    with pytest.raises(Exception) as excinfo:
        client.execute_state_transaction(
            store, [TransactionalStateOperation(key=key, data="v3", etag=stale)]
        )

    err = expect_grpc_error(excinfo, grpc.StatusCode.INTERNAL)
    assert err.error_code() == "ERR_STATE_TRANSACTION"


def test_http_save_with_stale_etag_is_409(client, http, store, kp):
    key = f"{kp}-k"
    stale = _stale_etag(client, store, key)

    r = http.post(f"/v1.0/state/{store}", json=[{"key": key, "value": "v3", "etag": stale}])

    assert r.status_code == 409, r.text
    assert r.json()["errorCode"] == "ERR_STATE_SAVE"
    assert client.get_state(store, key).data == b"v2"


def test_http_delete_with_stale_if_match_is_409(client, http, store, kp):
    key = f"{kp}-k"
    stale = _stale_etag(client, store, key)

    r = http.delete(f"/v1.0/state/{store}/{key}", headers={"If-Match": stale})

    assert r.status_code == 409, r.text
    assert r.json()["errorCode"] == "ERR_STATE_DELETE"
    assert client.get_state(store, key).data == b"v2"


def test_http_delete_with_current_if_match(client, http, store, kp):
    key = f"{kp}-k"
    client.save_state(store, key, "v1")
    etag = client.get_state(store, key).etag

    r = http.delete(f"/v1.0/state/{store}/{key}", headers={"If-Match": etag})

    assert r.status_code == 204, r.text
    assert client.get_state(store, key).data == b""


def test_http_get_has_etag_header_matching_grpc(client, http, store, kp):
    key = f"{kp}-k"
    client.save_state(store, key, "v1")

    r = http.get(f"/v1.0/state/{store}/{key}")

    assert r.status_code == 200, r.text
    assert r.content == b"v1"
    assert r.headers.get("ETag"), f"no ETag header; headers: {dict(r.headers)}"
    assert r.headers["ETag"] == client.get_state(store, key).etag


def test_http_save_with_current_etag_succeeds(client, http, store, kp):
    key = f"{kp}-k"
    client.save_state(store, key, "v1")
    etag = http.get(f"/v1.0/state/{store}/{key}").headers["ETag"]

    r = http.post(f"/v1.0/state/{store}", json=[{"key": key, "value": {"n": 2}, "etag": etag}])

    assert r.status_code == 204, r.text
    assert client.get_state(store, key).json() == {"n": 2}


# ---- rich details: illegal keys, unsupported operations ---------------------------------------
# Upstream (pkg/api/errors/state.go): state errors about a store carry, in this order, any
# extra detail (BadRequest for an illegal key, Help for missing transactions), a ResourceInfo
# {resource_type: "state", resource_name: <store>} and the ErrorInfo.


def _without_type(detail):
    """A status detail as the SDK decodes it, without its `@type`."""
    assert detail is not None
    return {k: v for k, v in dict(detail).items() if k != "@type"}


def test_illegal_key_over_grpc_has_bad_request_and_resource_info(client):
    with pytest.raises(Exception) as excinfo:
        client.save_state("mem-store", "ke||y1", "v")

    err = expect_grpc_error(excinfo, grpc.StatusCode.INVALID_ARGUMENT)
    message = "input key/keyPrefix 'ke||y1' can't contain '||'"
    assert err.details() == message
    assert err.error_code() == "DAPR_STATE_ILLEGAL_KEY"
    details = err.status_details()
    assert _without_type(details.bad_request) == {
        "field_violations": [{"field": "ke||y1", "description": message}]
    }
    assert _without_type(details.resource_info) == {"resource_type": "state", "resource_name": "mem-store"}


def test_illegal_key_over_http_is_daprs_exact_body(http):
    r = http.post("/v1.0/state/mem-store", json=[{"key": "ke||y1", "value": "v"}])

    assert r.status_code == 400, r.text
    message = "api error: code = InvalidArgument desc = input key/keyPrefix 'ke||y1' can't contain '||'"
    # Byte for byte what Dapr 1.16-1.18 answers, key order included.
    assert r.text == (
        '{"errorCode":"ERR_MALFORMED_REQUEST","message":"' + message + '","details":['
        '{"@type":"type.googleapis.com/google.rpc.BadRequest","field_violations":[{"field":"ke||y1","description":"'
        + message + '"}]},'
        '{"@type":"type.googleapis.com/google.rpc.ResourceInfo","description":"","owner":"","resource_name":"mem-store","resource_type":"state"},'
        '{"@type":"type.googleapis.com/google.rpc.ErrorInfo","domain":"dapr.io","metadata":null,"reason":"DAPR_STATE_ILLEGAL_KEY"}]}'
    )
    assert http.get("/v1.0/state/mem-store/ke%7C%7Cy1").status_code == 400


def test_illegal_key_in_an_http_transaction_names_no_field(http):
    # Dapr's transaction handler replaces the key with the empty result of the failed check
    # (pkg/api/http/http.go, onPostStateTransaction) before building the error.
    r = http.post(
        "/v1.0/state/mem-store/transaction",
        json={"operations": [{"operation": "upsert", "request": {"key": "ke||y1", "value": "v"}}]},
    )

    assert r.status_code == 400, r.text
    body = r.json()
    assert body["errorCode"] == "ERR_MALFORMED_REQUEST"
    message = "api error: code = InvalidArgument desc = input key/keyPrefix 'ke||y1' can't contain '||'"
    assert body["message"] == message
    assert body["details"][0] == {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "field_violations": [{"description": message}],
    }, r.text
    assert [d["@type"].rsplit(".", 1)[-1] for d in body["details"]] == ["BadRequest", "ResourceInfo", "ErrorInfo"]
    assert http.get("/v1.0/state/mem-store/ke%7C%7Cy1").status_code == 400


def test_query_unsupported_names_the_store(client, http):
    with pytest.raises(Exception) as excinfo:
        client.query_state("sqlite-store", '{"filter": {"EQ": {"a": "b"}}}')

    err = expect_grpc_error(excinfo, grpc.StatusCode.INTERNAL)
    assert err.error_code() == "DAPR_STATE_QUERYING_NOT_SUPPORTED"
    assert _without_type(err.status_details().resource_info) == {
        "resource_type": "state",
        "resource_name": "sqlite-store",
    }
    r = http.post("/v1.0-alpha1/state/sqlite-store/query", json={"filter": {"EQ": {"a": "b"}}})
    assert r.status_code == 500, r.text
    kinds = [d["@type"].rsplit(".", 1)[-1] for d in r.json()["details"]]
    assert kinds == ["ResourceInfo", "ErrorInfo"], r.text


def test_save_with_an_empty_key_over_grpc_is_daprs_error(raw_stub):
    from dapr.proto import api_v1, common_v1

    with pytest.raises(grpc.RpcError) as excinfo:
        raw_stub.SaveState(
            api_v1.SaveStateRequest(store_name="mem-store", states=[common_v1.StateItem(key="", value=b"v")])
        )
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert excinfo.value.details() == "state key cannot be empty"


# ---- smaller differences found by comparing with Dapr 1.18's handlers ------------------------


def test_http_error_bodies_escape_html_as_go_does(http):
    # Go's encoding/json writes <, > and & as \u003c, \u003e, \u0026 in every string.
    r = http.post("/v1.0/state/mem-store", json=[{"key": "a<b&c>||d", "value": "v"}])

    assert r.status_code == 400, r.text
    assert "a\\u003cb\\u0026c\\u003e||d" in r.text, r.text
    assert "a<b" not in r.text, r.text
    assert r.json()["details"][0]["field_violations"][0]["field"] == "a<b&c>||d"


def test_http_query_on_unknown_store_names_no_app(http):
    # Dapr's query API looks the store up without an app id: the ErrorInfo has no metadata.
    r = http.post(f"/v1.0-alpha1/state/{UNKNOWN}/query", json={"filter": {"EQ": {"a": "b"}}})

    assert r.status_code == 400, r.text
    info = r.json()["details"][-1]
    assert info["reason"] == "DAPR_STATE_NOT_FOUND", r.text
    assert info["metadata"] is None, r.text
    other = http.get(f"/v1.0/state/{UNKNOWN}/k").json()["details"][-1]
    assert other["metadata"]["appID"].startswith("sdk-"), other


def test_grpc_delete_with_an_empty_key_is_passed_to_the_store(raw_stub):
    # Dapr checks empty keys only on save: a delete of "" reaches the store and succeeds.
    from dapr.proto import api_v1

    raw_stub.DeleteState(api_v1.DeleteStateRequest(store_name="mem-store", key=""))
    raw_stub.DeleteBulkState(api_v1.DeleteBulkStateRequest(store_name="mem-store", states=[]))


def test_http_transaction_operation_without_a_type_is_unsupported(http):
    r = http.post("/v1.0/state/mem-store/transaction", json={"operations": [{"request": {"key": "k"}}]})

    assert r.status_code == 400, r.text
    assert r.json()["errorCode"] == "ERR_NOT_SUPPORTED_STATE_OPERATION", r.text
    assert r.json()["message"] == "operation type  not supported", r.text
