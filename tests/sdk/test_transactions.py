"""State transactions (ExecuteStateTransaction) through the official SDK (gRPC)."""

import grpc
import pytest
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType

from _compat import ATOMIC_TX_STORES, expect_grpc_error

DELETE = TransactionOperationType.delete


def upsert(key, data, etag=None):
    return TransactionalStateOperation(key=key, data=data, etag=etag)


def delete(key, etag=None):
    return TransactionalStateOperation(key=key, etag=etag, operation_type=DELETE)


def test_upserts_and_delete_are_all_applied(client, store, kp):
    k1, k2, k3 = f"{kp}-1", f"{kp}-2", f"{kp}-3"
    client.save_state(store, k3, "to-be-deleted")

    client.execute_state_transaction(
        store,
        [upsert(k1, "one"), upsert(k2, b"\x00two\xff"), delete(k3)],
    )

    assert client.get_state(store, k1).data == b"one"
    assert client.get_state(store, k2).data == b"\x00two\xff"
    assert client.get_state(store, k3).data == b""


def test_upsert_overwrites_existing_value(client, store, kp):
    key = f"{kp}-k"
    client.save_state(store, key, "old")
    old_etag = client.get_state(store, key).etag

    client.execute_state_transaction(store, [upsert(key, "new")])

    got = client.get_state(store, key)
    assert got.data == b"new"
    assert got.etag not in ("", old_etag)


def test_ops_with_current_etags_succeed(client, store, kp):
    k1, k2 = f"{kp}-1", f"{kp}-2"
    client.save_state(store, k1, "a")
    client.save_state(store, k2, "b")
    e1 = client.get_state(store, k1).etag
    e2 = client.get_state(store, k2).etag

    client.execute_state_transaction(store, [upsert(k1, "a2", etag=e1), delete(k2, etag=e2)])

    assert client.get_state(store, k1).data == b"a2"
    assert client.get_state(store, k2).data == b""


def test_transaction_ops_apply_in_order(client, store, kp):
    key = f"{kp}-k"
    client.execute_state_transaction(store, [upsert(key, "first"), delete(key), upsert(key, "last")])

    assert client.get_state(store, key).data == b"last"


def _prepare_stale_transaction(client, store, kp):
    """Keys: `existing` and `doomed` exist, `stale` was updated after its etag was read,
    `fresh` does not exist. Returns (keys, operations, stale_etag_now)."""
    existing, stale, fresh, doomed = (f"{kp}-{n}" for n in ("existing", "stale", "fresh", "doomed"))
    client.save_state(store, existing, "existing-orig")
    client.save_state(store, doomed, "doomed-orig")
    client.save_state(store, stale, "stale-v1")
    old_etag = client.get_state(store, stale).etag
    client.save_state(store, stale, "stale-v2")
    current = client.get_state(store, stale).etag
    assert current != old_etag

    # The stale op sits in the middle: ops before it must be rolled back, ops after it must not run.
    ops = [
        upsert(existing, "existing-new"),
        upsert(fresh, "fresh-new"),
        upsert(stale, "stale-v3", etag=old_etag),
        delete(doomed),
    ]
    return (existing, stale, fresh, doomed), ops, current


def test_stale_etag_fails_the_transaction(client, store, kp):
    (_, stale, _, _), ops, current = _prepare_stale_transaction(client, store, kp)

    with pytest.raises(Exception) as excinfo:
        client.execute_state_transaction(store, ops)
    # Upstream wraps every Multi() failure as INTERNAL (ERR_STATE_TRANSACTION).
    expect_grpc_error(excinfo, grpc.StatusCode.INTERNAL)

    got = client.get_state(store, stale)
    assert got.data == b"stale-v2", "the op with the stale etag must not be applied"
    assert got.etag == current


@pytest.mark.parametrize("store", ATOMIC_TX_STORES)
def test_failed_transaction_leaves_every_key_unchanged(client, store, kp):
    (existing, stale, fresh, doomed), ops, _ = _prepare_stale_transaction(client, store, kp)

    with pytest.raises(Exception) as excinfo:
        client.execute_state_transaction(store, ops)
    expect_grpc_error(excinfo, grpc.StatusCode.INTERNAL)

    assert client.get_state(store, existing).data == b"existing-orig", "earlier upsert not rolled back"
    assert client.get_state(store, fresh).data == b"", "earlier insert not rolled back"
    assert client.get_state(store, stale).data == b"stale-v2"
    assert client.get_state(store, doomed).data == b"doomed-orig", "later delete was applied"


@pytest.mark.parametrize("store", ATOMIC_TX_STORES)
def test_stale_etag_on_delete_fails_atomically(client, store, kp):
    k, other = f"{kp}-k", f"{kp}-other"
    client.save_state(store, k, "v1")
    stale = client.get_state(store, k).etag
    client.save_state(store, k, "v2")

    with pytest.raises(Exception) as excinfo:
        client.execute_state_transaction(store, [upsert(other, "x"), delete(k, etag=stale)])
    expect_grpc_error(excinfo, grpc.StatusCode.INTERNAL)

    assert client.get_state(store, k).data == b"v2"
    assert client.get_state(store, other).data == b""
