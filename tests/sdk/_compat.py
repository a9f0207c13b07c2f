"""Shared constants and small helpers for the SDK compatibility suite.

Kept apart from conftest.py so test modules can import them by name.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Optional, TypeVar

import grpc
import pytest
from dapr.clients.exceptions import DaprGrpcError

# The four stores of the main sidecar and the component type each one is declared with.
STORE_TYPES = {
    "mem-store": "state.in-memory",
    "redis-store": "state.redis",
    "pg-store": "state.postgresql",
    "sqlite-store": "state.sqlite",
}
STORES = list(STORE_TYPES)

# Stores whose transactions are atomic in upstream Dapr. Redis is not: components-contrib's
# redis Multi() runs the operations in a MULTI/EXEC pipeline and Redis never rolls back, so a
# stale-etag op fails on its own while the other ops of the same transaction are applied
# (the component even logs "Redis does not support transaction rollbacks").
ATOMIC_TX_STORES = ["mem-store", "pg-store", "sqlite-store"]

# Capabilities every one of the four stores reports in upstream Dapr.
COMMON_CAPABILITIES = {"ETAG", "TRANSACTIONAL", "TTL"}

T = TypeVar("T")


def wait_until(fn: Callable[[], T], timeout: float, interval: float = 0.2) -> Optional[T]:
    """Calls fn until it returns something truthy or timeout seconds pass; returns the last value."""
    deadline = time.monotonic() + timeout
    value = fn()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = fn()
    return value


def expect_grpc_error(
    excinfo: pytest.ExceptionInfo, codes: Iterable[grpc.StatusCode] | grpc.StatusCode
) -> DaprGrpcError:
    """Asserts the SDK raised a DaprGrpcError with one of the given status codes."""
    if isinstance(codes, grpc.StatusCode):
        codes = [codes]
    codes = list(codes)
    err = excinfo.value
    assert isinstance(err, DaprGrpcError), f"expected DaprGrpcError, got {type(err)!r}: {err!r}"
    assert err.code() in codes, (
        f"expected gRPC code in {[c.name for c in codes]}, got {err.code().name}: {err.details()!r}"
    )
    return err
