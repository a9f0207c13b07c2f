"""A daprd started without --resources-path must come up with an embedded in-memory `statestore`."""

import grpc
import pytest
from dapr.clients.grpc._request import TransactionalStateOperation

from _compat import COMMON_CAPABILITIES, expect_grpc_error


def test_healthz_is_204(default_http):
    r = default_http.get("/v1.0/healthz")
    assert r.status_code == 204, r.text


def test_outbound_healthz_is_204(default_http):
    r = default_http.get("/v1.0/healthz/outbound")
    assert r.status_code == 204, r.text


def test_sdk_save_get_delete_on_statestore(default_client, kp):
    key = f"{kp}-k"

    default_client.save_state("statestore", key, "embedded")
    got = default_client.get_state("statestore", key)
    assert got.data == b"embedded"
    assert got.etag

    default_client.delete_state("statestore", key)
    assert default_client.get_state("statestore", key).data == b""


def test_sdk_transaction_on_statestore(default_client, kp):
    k1, k2 = f"{kp}-1", f"{kp}-2"
    default_client.execute_state_transaction(
        "statestore",
        [TransactionalStateOperation(key=k1, data="one"), TransactionalStateOperation(key=k2, data="two")],
    )

    assert default_client.get_state("statestore", k1).data == b"one"
    assert default_client.get_state("statestore", k2).data == b"two"


def test_http_save_and_get_on_statestore(default_http, kp):
    key = f"{kp}-k"
    r = default_http.post("/v1.0/state/statestore", json=[{"key": key, "value": {"via": "http"}}])
    assert r.status_code == 204, r.text

    r = default_http.get(f"/v1.0/state/statestore/{key}")
    assert r.status_code == 200, r.text
    assert r.json() == {"via": "http"}


def test_metadata_reports_embedded_statestore(default_client, default_sidecar):
    md = default_client.get_metadata()

    assert md.application_id == default_sidecar.app_id
    comps = {c.name: c for c in md.registered_components}
    assert "statestore" in comps, sorted(comps)
    assert comps["statestore"].type == "state.in-memory"
    assert comps["statestore"].version == "v1"
    assert COMMON_CAPABILITIES <= set(comps["statestore"].capabilities)


def test_main_sidecar_stores_are_not_present(default_client):
    with pytest.raises(Exception) as excinfo:
        default_client.get_state("mem-store", "k")
    expect_grpc_error(excinfo, grpc.StatusCode.INVALID_ARGUMENT)


def test_metadata_reports_embedded_pubsub(default_client):
    comps = {c.name: c for c in default_client.get_metadata().registered_components}
    assert comps["pubsub"].type == "pubsub.in-memory", sorted(comps)


def test_http_publish_to_the_embedded_pubsub(default_http):
    r = default_http.post("/v1.0/publish/pubsub/orders/eu", json={"orderId": 1})
    assert r.status_code == 204, r.text
    r = default_http.post("/v1.0/publish/pubsub/orders?metadata.rawPayload=true", data=b"raw")
    assert r.status_code == 204, r.text


def test_http_publish_errors_are_daprs(default_http):
    r = default_http.post("/v1.0/publish/nope/orders", json={})
    assert r.status_code == 404, r.text
    assert r.json()["errorCode"] == "ERR_PUBSUB_NOT_FOUND"
    assert r.json()["message"] == "pubsub nope is not found"
    r = default_http.post("/v1.0/publish/pubsub", json={})
    assert r.status_code == 404, r.text
    assert r.json()["errorCode"] == "ERR_TOPIC_NAME_EMPTY"
    r = default_http.post(
        "/v1.0/publish/pubsub/orders",
        data=b"{broken",
        headers={"Content-Type": "application/cloudevents+json"},
    )
    assert r.json()["errorCode"] == "ERR_PUBSUB_CLOUD_EVENTS_SER", r.text
