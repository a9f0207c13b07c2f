"""Bindings through our sidecar with the official SDK: a cron input binding firing into an
HTTP app (whose answer writes state) and into a dapr-ext-grpc app, and output bindings
(localstorage round trip) with Dapr's errors."""

import base64
import json
import os
import time
from pathlib import Path

import pytest
import requests

import conftest
from conftest import _component_yaml, _free_ports, _sdk_client, _start_sidecar, _stop_sidecar
from test_pubsub import _eventually, _start_app

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def bindings_sidecar(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("daprd-bindings")
    (app_port,) = _free_ports(1)
    app = _start_app(HERE / "bindings_app.py", app_port)
    sidecar = None
    try:
        resources = workdir / "resources"
        resources.mkdir()
        (resources / "statestore.yaml").write_text(_component_yaml("statestore", "state.in-memory", {}))
        (resources / "cron.yaml").write_text(
            _component_yaml("cron", "bindings.cron", {"schedule": "@every 1s", "route": "/cron-tick"})
        )
        (resources / "unwanted.yaml").write_text(_component_yaml("unwanted", "bindings.cron", {"schedule": "@every 1s"}))
        (resources / "files.yaml").write_text(
            _component_yaml("files", "bindings.localstorage", {"rootPath": str(workdir / "files")})
        )
        sidecar_dir = workdir / "sidecar"
        sidecar_dir.mkdir()
        sidecar = _start_sidecar("bindings", sidecar_dir, resources, dict(os.environ), extra=["--app-port", str(app_port)])
        client = _sdk_client(sidecar)
        try:
            yield client, sidecar, f"http://127.0.0.1:{app_port}", workdir / "files"
        finally:
            client.close()
    finally:
        if sidecar is not None:
            _stop_sidecar(sidecar)
        app.terminate()
        app.wait(timeout=10)


def test_cron_fires_into_the_app_and_its_answer_writes_state(bindings_sidecar):
    client, _, app_url, _ = bindings_sidecar
    ticks = _eventually(lambda: requests.get(f"{app_url}/ticks", timeout=5).json(), lambda t: len(t) >= 2, "two cron ticks")
    assert ticks[0]["headers"]["timezone"] == "Local"
    assert ticks[0]["headers"]["readtimeutc"].endswith("+0000 UTC")
    assert ticks[0]["headers"]["content-type"] == "application/json"
    count = _eventually(
        lambda: client.get_state("statestore", "cron-count").data, lambda d: d not in (b"", None) and int(d) >= 1,
        "state written from the app's answer",
    )
    assert int(count) >= 1


def test_a_binding_the_app_does_not_take_is_not_started(bindings_sidecar):
    _, sidecar, _, _ = bindings_sidecar
    log = sidecar.log_path.read_text()
    assert "app has not subscribed to binding unwanted." in log


def test_localstorage_round_trip(bindings_sidecar):
    client, sidecar, _, root = bindings_sidecar
    r = client.invoke_binding("files", "create", data=json.dumps("hello file"), binding_metadata={"fileName": "a/b.txt"})
    assert json.loads(r.data) == {"fileName": "a/b.txt"}
    assert (root / "a" / "b.txt").read_bytes() == b"hello file"
    assert client.invoke_binding("files", "get", binding_metadata={"fileName": "a/b.txt"}).data == b"hello file"
    listed = json.loads(client.invoke_binding("files", "list").data)
    assert listed == [str(root / "a" / "b.txt")]
    # Over HTTP the data is JSON; a string arrives quoted, which localstorage unquotes.
    http = requests.post(f"{sidecar.http_url}/v1.0/bindings/files",
                         json={"operation": "create", "data": "via http", "metadata": {"fileName": "h.txt"}}, timeout=5)
    assert http.status_code == 200 and http.json() == {"fileName": "h.txt"}
    assert (root / "h.txt").read_bytes() == b"via http"
    b64 = base64.b64encode(b"\x00\x01").decode()
    client.invoke_binding("files", "create", data=b64, binding_metadata={"fileName": "bin"})
    assert (root / "bin").read_bytes() == b"\x00\x01"
    d = requests.post(f"{sidecar.http_url}/v1.0/bindings/files",
                      json={"operation": "delete", "metadata": {"fileName": "h.txt"}}, timeout=5)
    assert d.status_code == 204
    assert not (root / "h.txt").exists()


def test_output_binding_errors_are_daprs(bindings_sidecar):
    _, sidecar, _, _ = bindings_sidecar
    url = f"{sidecar.http_url}/v1.0/bindings"
    r = requests.post(f"{url}/files", json={"operation": "get", "metadata": {"fileName": "nope"}}, timeout=5)
    assert r.status_code == 500
    assert r.json()["errorCode"] == "ERR_INVOKE_OUTPUT_BINDING"
    assert r.json()["message"].startswith("error invoking output binding files: file not found")
    r = requests.post(f"{url}/nosuch", json={"operation": "create"}, timeout=5)
    assert r.status_code == 500
    assert r.json()["message"] == "error invoking output binding nosuch: couldn't find output binding nosuch"
    r = requests.post(f"{url}/files", json={"operation": "explode"}, timeout=5)
    assert "does not support operation explode. supported operations:create get list delete" in r.json()["message"]
    r = requests.post(f"{url}/files", json={"data": 1}, timeout=5)
    assert "operation field is missing from request" in r.json()["message"]
    r = requests.post(f"{url}/files", data=b"{not json", timeout=5)
    assert r.status_code == 400 and r.json()["errorCode"] == "ERR_MALFORMED_REQUEST"
    r = requests.post(f"{url}/cron", json={"operation": "create"}, timeout=5)
    assert "couldn't find output binding cron" in r.json()["message"], "an input-only binding"


def test_grpc_app_gets_input_binding_events(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("daprd-bindings-grpc")
    (app_port,) = _free_ports(1)
    app = _start_app(HERE / "bindings_grpc_app.py", app_port)
    sidecar = None
    try:
        resources = workdir / "resources"
        resources.mkdir()
        (resources / "cron.yaml").write_text(_component_yaml("grpc-cron", "bindings.cron", {"schedule": "@every 1s"}))
        (resources / "other.yaml").write_text(_component_yaml("not-listed", "bindings.cron", {"schedule": "@every 1s"}))
        sidecar = _start_sidecar("bindings-grpc", workdir / "resources", resources, dict(os.environ),
                                 extra=["--app-port", str(app_port), "--app-protocol", "grpc"])
        client = _sdk_client(sidecar)
        try:
            got = _eventually(
                lambda: json.loads(client.invoke_method(sidecar.app_id, "received", data=b"").data),
                lambda e: len(e) >= 1, "gRPC binding events",
            )
            assert "readTimeUTC" in got[0]
            assert "app has not subscribed to binding not-listed." in sidecar.log_path.read_text()
        finally:
            client.close()
    finally:
        if sidecar is not None:
            _stop_sidecar(sidecar)
        app.terminate()
        app.wait(timeout=10)
