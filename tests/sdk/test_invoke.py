"""Service invocation judged by the official SDK: `DaprClient.invoke_method` through one
sidecar reaches a Flask app behind another sidecar, found by name resolution."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from dapr.clients import DaprClient
from dapr.conf import settings

from conftest import _free_ports, _start_sidecar, _stop_sidecar

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("daprd-invoke")
    (app_port,) = _free_ports(1)
    app = subprocess.Popen(
        [sys.executable, str(HERE / "invoke_app.py"), str(app_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(f"http://127.0.0.1:{app_port}/ping", timeout=1)
            break
        except requests.RequestException:
            assert time.monotonic() < deadline, "flask app did not start"
            time.sleep(0.1)
    config = workdir / "config.yaml"
    config.write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: nr\nspec:\n"
        "  nameResolution:\n    component: sqlite\n    configuration:\n"
        f"      connectionString: \"{workdir / 'hosts.db'}\"\n"
    )
    env = dict(os.environ)
    callee_dir, caller_dir = workdir / "callee", workdir / "caller"
    callee_dir.mkdir()
    caller_dir.mkdir()
    callee = _start_sidecar("callee", callee_dir, None, env, extra=["--app-port", str(app_port), "--config", str(config)])
    caller = _start_sidecar("caller", caller_dir, None, env, extra=["--config", str(config)])
    settings.DAPR_HTTP_ENDPOINT = caller.http_url
    settings.DAPR_API_TOKEN = None
    client = DaprClient(address=caller.grpc_address)
    yield client, caller, callee
    client.close()
    _stop_sidecar(caller)
    _stop_sidecar(callee)
    app.terminate()
    app.wait(timeout=10)


def test_invoke_method_post_json(pair):
    client, caller, callee = pair
    resp = client.invoke_method(
        callee.app_id, "orders/new", data=json.dumps({"id": 7}), content_type="application/json", http_verb="POST"
    )
    got = json.loads(resp.data)
    assert got["method"] == "POST"
    assert got["path"] == "orders/new"
    assert json.loads(got["body"]) == {"id": 7}
    assert got["caller"] == caller.app_id


def test_invoke_method_get_with_query(pair):
    client, _, callee = pair
    resp = client.invoke_method(callee.app_id, "items", http_verb="GET", http_querystring=(("a", "1"), ("b", "2")))
    got = json.loads(resp.data)
    assert got["method"] == "GET"
    assert got["query"] == "a=1&b=2"


def test_http_invoke_relays_the_app_status(pair):
    _, caller, callee = pair
    r = requests.put(
        f"{caller.http_url}/v1.0/invoke/{callee.app_id}/method/fail", headers={"x-status": "503"}, data=b"x"
    )
    assert r.status_code == 503
    assert r.json()["method"] == "PUT"


def test_unknown_app_is_a_direct_invoke_error(pair):
    _, caller, _ = pair
    r = requests.get(f"{caller.http_url}/v1.0/invoke/nobody-here/method/x")
    assert r.status_code == 500
    assert r.json()["errorCode"] == "ERR_DIRECT_INVOKE"
