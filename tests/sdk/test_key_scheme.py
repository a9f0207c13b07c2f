"""Dapr's storage key scheme, checked in the real backends: values saved through the SDK must
land under `<prefix>||<key>` for each `keyPrefix` strategy, so data is shared with (and
readable by) Dapr's own sidecars."""

import os
import secrets
import subprocess

import pytest
from dapr.clients import DaprClient
from dapr.conf import settings

from conftest import _component_yaml, _require_env, _start_sidecar, _stop_sidecar


@pytest.fixture(scope="module")
def scheme(tmp_path_factory):
    redis_port = _require_env("REDIS_PORT", "key-scheme tests read Redis directly")
    pg_url = _require_env("PG_URL", "key-scheme tests read PostgreSQL directly")
    workdir = tmp_path_factory.mktemp("daprd-keys")
    resources = workdir / "resources"
    resources.mkdir()
    table = f"keys_{secrets.token_hex(6)}"
    host = {"redisHost": f"127.0.0.1:{redis_port}"}
    components = {
        "r-appid": ("state.redis", dict(host)),
        "r-name": ("state.redis", dict(host, keyPrefix="name")),
        "r-none": ("state.redis", dict(host, keyPrefix="none")),
        "r-custom": ("state.redis", dict(host, keyPrefix="MyPrefix")),
        "pg-appid": ("state.postgresql", {"connectionString": pg_url, "tableName": table}),
    }
    for name, (type_, md) in components.items():
        (resources / f"{name}.yaml").write_text(_component_yaml(name, type_, md))
    sidecar = _start_sidecar("keys", workdir, resources, dict(os.environ))
    settings.DAPR_HTTP_ENDPOINT = sidecar.http_url
    settings.DAPR_API_TOKEN = None
    client = DaprClient(address=sidecar.grpc_address)
    yield sidecar, client, redis_port, pg_url, table
    client.close()
    _stop_sidecar(sidecar)


def redis_hget(port, key, field):
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "--raw", "HGET", key, field],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.rstrip("\n")


@pytest.mark.parametrize(
    "store, prefix",
    [("r-appid", "{app}||"), ("r-name", "r-name||"), ("r-none", ""), ("r-custom", "myprefix||")],
)
def test_redis_keys_follow_the_prefix_strategy(scheme, store, prefix):
    sidecar, client, redis_port, _, _ = scheme
    key = f"k-{secrets.token_hex(4)}"
    client.save_state(store, key, "stored-value")
    stored = prefix.format(app=sidecar.app_id) + key
    assert redis_hget(redis_port, stored, "data") == "stored-value"
    assert redis_hget(redis_port, stored, "version") == "1"
    assert client.get_state(store, key).data == b"stored-value"


def test_values_written_by_another_sidecar_are_read(scheme):
    """A value written under this app's prefix by something else (a Go sidecar) is read."""
    sidecar, client, redis_port, _, _ = scheme
    key = f"k-{secrets.token_hex(4)}"
    subprocess.run(
        ["redis-cli", "-p", str(redis_port), "HSET", f"{sidecar.app_id}||{key}", "data", "from-go", "version", "7"],
        check=True, capture_output=True,
    )
    got = client.get_state("r-appid", key)
    assert got.data == b"from-go"
    assert got.etag == "7"


def test_postgres_rows_use_the_app_prefix(scheme):
    sidecar, client, _, pg_url, table = scheme
    key = f"k-{secrets.token_hex(4)}"
    client.save_state("pg-appid", key, b"\x00binary")
    client.save_state("pg-appid", key + "-json", '{"a": 1}', state_metadata={"contentType": "application/json"})
    query = f"SELECT key, isbinary, value::text FROM {table} WHERE key LIKE '{sidecar.app_id}||{key}%' ORDER BY key"
    out = subprocess.run(
        ["psql", pg_url, "-At", "-F", "\t", "-c", query], check=True, capture_output=True, text=True
    )
    rows = [line.split("\t") for line in out.stdout.strip().splitlines()]
    assert [r[0] for r in rows] == [f"{sidecar.app_id}||{key}", f"{sidecar.app_id}||{key}-json"]
    # Opaque gRPC bytes are stored as Dapr's Go store stores []byte; JSON documents as jsonb.
    assert rows[0][1:] == ["t", '"AGJpbmFyeQ=="'], rows
    assert rows[1][1:] == ["f", '{"a": 1}'], rows
