"""Invocation of a gRPC app (`--app-protocol grpc`, AppCallback/OnInvoke) built with the
official dapr-ext-grpc, through a second sidecar, with the official client."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError, DaprHttpError
from dapr.conf import settings

from conftest import _free_ports, _start_sidecar, _stop_sidecar

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def grpc_pair(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("daprd-grpc-app")
    (app_port,) = _free_ports(1)
    app = subprocess.Popen([sys.executable, str(HERE / "grpc_app.py"), str(app_port)])
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", app_port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "gRPC app did not start"
            time.sleep(0.1)
    config = workdir / "config.yaml"
    config.write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: nr\nspec:\n"
        "  nameResolution:\n    component: sqlite\n    configuration:\n"
        f"      connectionString: \"{workdir / 'hosts.db'}\"\n"
    )
    env = dict(os.environ)
    (workdir / "callee").mkdir()
    (workdir / "caller").mkdir()
    callee = _start_sidecar(
        "grpc-callee", workdir / "callee", None, env,
        extra=["--app-port", str(app_port), "--app-protocol", "grpc", "--config", str(config)],
    )
    caller = _start_sidecar("grpc-caller", workdir / "caller", None, env, extra=["--config", str(config)])
    settings.DAPR_HTTP_ENDPOINT = caller.http_url
    settings.DAPR_API_TOKEN = None
    client = DaprClient(address=caller.grpc_address)
    yield client, caller, callee
    client.close()
    _stop_sidecar(caller)
    _stop_sidecar(callee)
    app.terminate()
    app.wait(timeout=10)


def test_invoke_grpc_app_through_two_sidecars(grpc_pair):
    client, _, callee = grpc_pair
    resp = client.invoke_method(callee.app_id, "say_hello", data=b"world", content_type="text/plain")
    assert resp.data == b"hello world"


def test_invoke_grpc_app_on_its_own_sidecar(grpc_pair):
    _, _, callee = grpc_pair
    settings.DAPR_HTTP_ENDPOINT = callee.http_url
    with DaprClient(address=callee.grpc_address) as c:
        assert c.invoke_method(callee.app_id, "say_hello", data=b"me").data == b"hello me"


def test_grpc_app_errors_reach_the_caller(grpc_pair):
    """The app's gRPC error (UNKNOWN from a raised exception) arrives as a failed call with
    Dapr's HTTP mapping of the code (500); SDK 1.19 invokes over HTTP."""
    client, _, callee = grpc_pair
    with pytest.raises((DaprGrpcError, DaprHttpError)) as err:
        client.invoke_method(callee.app_id, "fail", data=b"x")
    if isinstance(err.value, DaprHttpError):
        assert err.value.status_code == 500
