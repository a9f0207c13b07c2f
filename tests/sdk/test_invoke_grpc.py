"""Invocation of a gRPC app (`--app-protocol grpc`, AppCallback/OnInvoke) built with the
official dapr-ext-grpc, through a second sidecar, with the official client."""

from pathlib import Path

import pytest
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError, DaprHttpError
from dapr.conf import settings

from conftest import invocation_pair

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def grpc_pair(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("daprd-grpc-app")
    with invocation_pair(workdir, "grpc", HERE / "grpc_app.py", ["--app-protocol", "grpc"]) as p:
        yield p


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
