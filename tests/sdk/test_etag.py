"""Optimistic concurrency (ETags) through the official SDK (gRPC).

Upstream Dapr maps a state store ETag mismatch to gRPC ABORTED (and a malformed ETag to
INVALID_ARGUMENT) in SaveState/DeleteState. "Stale" ETags here are always real ETags the
store handed out earlier, so they are well-formed for every store (postgres ETags must parse
as uint32, redis ETags as integers).
"""

import grpc
import pytest
from dapr.clients.grpc._state import Concurrency, StateItem, StateOptions

from _compat import expect_grpc_error

FIRST_WRITE = StateOptions(concurrency=Concurrency.first_write)


def test_save_with_current_etag_succeeds_and_changes_etag(client, store, kp):
    key = f"{kp}-k"
    client.save_state(store, key, "v1")
    first = client.get_state(store, key)
    assert first.etag, "get must return an etag for an existing key"

    client.save_state(store, key, "v2", etag=first.etag)

    second = client.get_state(store, key)
    assert second.data == b"v2"
    assert second.etag, "get must return an etag after an etag-checked save"
    assert second.etag != first.etag, "a successful write must change the etag"


def test_plain_save_changes_etag(client, store, kp):
    key = f"{kp}-k"
    client.save_state(store, key, "v1")
    e1 = client.get_state(store, key).etag
    client.save_state(store, key, "v2")

    assert client.get_state(store, key).etag not in ("", e1)


def test_save_with_stale_etag_is_aborted(client, store, kp):
    key = f"{kp}-k"
    client.save_state(store, key, "v1")
    stale = client.get_state(store, key).etag
    client.save_state(store, key, "v2", etag=stale)
    current = client.get_state(store, key)

    with pytest.raises(Exception) as excinfo:
        client.save_state(store, key, "v3", etag=stale)
    expect_grpc_error(excinfo, grpc.StatusCode.ABORTED)

    after = client.get_state(store, key)
    assert after.data == b"v2", "a rejected save must not change the value"
    assert after.etag == current.etag, "a rejected save must not change the etag"


def test_save_with_stale_etag_in_bulk_is_aborted(client, store, kp):
    # SaveState with one state item vs. several items goes through different code paths
    # upstream (Set vs BulkSet); the stale item must be rejected either way.
    key, other = f"{kp}-k", f"{kp}-other"
    client.save_state(store, key, "v1")
    stale = client.get_state(store, key).etag
    client.save_state(store, key, "v2")

    with pytest.raises(Exception) as excinfo:
        client.save_bulk_state(
            store, [StateItem(key=key, value="v3", etag=stale), StateItem(key=other, value="x")]
        )
    expect_grpc_error(excinfo, grpc.StatusCode.ABORTED)
    assert client.get_state(store, key).data == b"v2"


def test_delete_with_stale_etag_is_aborted(client, store, kp):
    key = f"{kp}-k"
    client.save_state(store, key, "v1")
    stale = client.get_state(store, key).etag
    client.save_state(store, key, "v2")
    current = client.get_state(store, key).etag

    with pytest.raises(Exception) as excinfo:
        client.delete_state(store, key, etag=stale)
    expect_grpc_error(excinfo, grpc.StatusCode.ABORTED)

    assert client.get_state(store, key).data == b"v2", "a rejected delete must keep the key"

    client.delete_state(store, key, etag=current)
    assert client.get_state(store, key).data == b"", "delete with the current etag must remove the key"


def test_first_write_without_etag_on_existing_key_fails(client, store, kp):
    key = f"{kp}-k"
    # Create the key with first-write as well: upstream redis only enforces first-write against
    # keys that were themselves written with first-write concurrency.
    client.save_state(store, key, "original", options=FIRST_WRITE)
    assert client.get_state(store, key).data == b"original"

    with pytest.raises(Exception) as excinfo:
        client.save_state(store, key, "intruder", options=FIRST_WRITE)
    # Upstream: in-memory and sqlite report an ETag mismatch (ABORTED); postgres ("no item was
    # updated") and redis ("failed to set key") report a plain store error (INTERNAL).
    expect_grpc_error(excinfo, [grpc.StatusCode.ABORTED, grpc.StatusCode.INTERNAL])

    assert client.get_state(store, key).data == b"original"


def test_first_write_with_current_etag_succeeds(client, store, kp):
    key = f"{kp}-k"
    client.save_state(store, key, "original", options=FIRST_WRITE)
    etag = client.get_state(store, key).etag

    client.save_state(store, key, "updated", etag=etag, options=FIRST_WRITE)

    assert client.get_state(store, key).data == b"updated"


def test_first_write_on_new_key_succeeds(client, store, kp):
    key = f"{kp}-fresh"
    client.save_state(store, key, "created", options=FIRST_WRITE)

    assert client.get_state(store, key).data == b"created"
