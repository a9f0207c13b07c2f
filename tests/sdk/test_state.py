"""State CRUD through the official SDK (gRPC): save/get/delete, bulk operations and TTL.

Every test runs against each of the four stores of the main sidecar (the `store` fixture).
"""

import time

from dapr.clients.grpc._state import StateItem
from dapr.proto import api_v1, common_v1

from _compat import wait_until


# ---- single key -----------------------------------------------------------------------------


def test_str_value_round_trip_and_delete(client, store, kp):
    key = f"{kp}-str"
    value = "hello, wörld ✓"

    client.save_state(store, key, value)

    got = client.get_state(store, key)
    assert got.data == value.encode("utf-8")
    assert got.text() == value
    assert got.etag, "every one of the four stores supports ETags: get must return one"

    client.delete_state(store, key)

    gone = client.get_state(store, key)
    assert gone.data == b""
    assert gone.etag == ""


def test_bytes_value_round_trip_is_byte_exact(client, store, kp):
    key = f"{kp}-bytes"
    # Not valid UTF-8, contains NUL and bytes that look like JSON/base64 framing.
    value = b"\x00\xff\xfe\x80binary\"{}==\n\x01"

    client.save_state(store, key, value)

    assert client.get_state(store, key).data == value


def test_json_text_is_returned_verbatim(client, store, kp):
    key = f"{kp}-json"
    value = '{"b": 2, "a": [1, 2, {"c": null}]}'

    client.save_state(store, key, value)

    got = client.get_state(store, key)
    assert got.data == value.encode()
    assert got.json() == {"b": 2, "a": [1, 2, {"c": None}]}


def test_save_overwrites(client, store, kp):
    key = f"{kp}-over"
    client.save_state(store, key, "first")
    client.save_state(store, key, "second")

    assert client.get_state(store, key).data == b"second"


def test_get_missing_key_returns_empty_data(client, store, kp):
    got = client.get_state(store, f"{kp}-never-saved")

    assert got.data == b""
    assert got.etag == ""


def test_delete_missing_key_succeeds(client, store, kp):
    key = f"{kp}-never-saved"

    client.delete_state(store, key)  # must not raise

    assert client.get_state(store, key).data == b""


def test_keys_are_independent(client, store, kp):
    client.save_state(store, f"{kp}-a", "A")
    client.save_state(store, f"{kp}-b", "B")
    client.delete_state(store, f"{kp}-a")

    assert client.get_state(store, f"{kp}-a").data == b""
    assert client.get_state(store, f"{kp}-b").data == b"B"


# ---- bulk -----------------------------------------------------------------------------------


def test_save_bulk_and_get_bulk(client, store, kp):
    values = {
        f"{kp}-1": b"one",
        f"{kp}-2": b"\x00two\xff",
        f"{kp}-3": "three ✓".encode(),
    }
    client.save_bulk_state(
        store,
        [
            StateItem(key=f"{kp}-1", value="one"),
            StateItem(key=f"{kp}-2", value=b"\x00two\xff"),
            StateItem(key=f"{kp}-3", value="three ✓"),
        ],
    )
    missing = f"{kp}-missing"
    keys = list(values) + [missing]

    for parallelism in (1, 3):
        resp = client.get_bulk_state(store, keys, parallelism=parallelism)
        items = {item.key: item for item in resp.items}

        assert len(resp.items) == len(keys), [i.key for i in resp.items]
        assert set(items) == set(keys)
        for key, value in values.items():
            assert items[key].data == value, key
            assert items[key].etag, f"{key}: bulk get must return the etag"
            assert items[key].error == ""
            # The bulk etag is the same one a single get reports.
            assert items[key].etag == client.get_state(store, key).etag
        assert items[missing].data == b""
        assert items[missing].etag == ""
        assert items[missing].error == ""


def test_get_bulk_with_no_keys_returns_no_items(client, store):
    assert list(client.get_bulk_state(store, [], parallelism=2).items) == []


def test_delete_bulk_state(client, raw_stub, store, kp):
    # DaprClient 1.19 has no delete_bulk_state; call the SDK's generated stub for
    # Dapr's DeleteBulkState RPC directly.
    keys = [f"{kp}-{i}" for i in range(3)]
    client.save_bulk_state(store, [StateItem(key=k, value=f"v-{k}") for k in keys])

    raw_stub.DeleteBulkState(
        api_v1.DeleteBulkStateRequest(
            store_name=store,
            states=[common_v1.StateItem(key=keys[0]), common_v1.StateItem(key=keys[1])],
        ),
        timeout=30,
    )

    items = {i.key: i for i in client.get_bulk_state(store, keys).items}
    assert items[keys[0]].data == b""
    assert items[keys[1]].data == b""
    assert items[keys[2]].data == f"v-{keys[2]}".encode()


# ---- TTL ------------------------------------------------------------------------------------


def test_ttl_expires_value(client, store, kp):
    key = f"{kp}-ttl"
    control = f"{kp}-no-ttl"
    client.save_state(store, key, "short-lived", state_metadata={"ttlInSeconds": "1"})
    client.save_state(store, control, "stays")

    assert client.get_state(store, key).data == b"short-lived", "a TTL'd value is readable at once"

    started = time.monotonic()
    # Expiry is nominally after 1 s; sqlite/postgres timestamps have coarse resolution, so give
    # it up to 5 s in total.
    expired = wait_until(lambda: client.get_state(store, key).data == b"", timeout=5.0, interval=0.25)
    assert expired, f"value with ttlInSeconds=1 still readable after {time.monotonic() - started:.1f}s"
    assert client.get_state(store, key).etag == ""
    assert client.get_state(store, control).data == b"stays"


def test_ttl_expired_key_is_missing_from_bulk_get(client, store, kp):
    key = f"{kp}-ttl"
    client.save_bulk_state(
        store, [StateItem(key=key, value="short-lived", metadata={"ttlInSeconds": "1"})]
    )

    def gone():
        (item,) = client.get_bulk_state(store, [key]).items
        return item.data == b""

    assert wait_until(gone, timeout=5.0, interval=0.25), "expired key still returned by bulk get"
