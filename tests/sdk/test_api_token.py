"""DAPR_API_TOKEN with the official SDK: calls without the token are refused, calls made with
the SDK's own token setting work, and the health endpoints stay open."""

import os

import grpc
import pytest
import requests
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.conf import settings

from conftest import _start_sidecar, _stop_sidecar

TOKEN = "sdk-test-token"


@pytest.fixture(scope="module")
def token_sidecar(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("daprd-token")
    env = dict(os.environ, DAPR_API_TOKEN=TOKEN)
    sidecar = _start_sidecar("token", workdir, None, env)
    yield sidecar
    _stop_sidecar(sidecar)


def _client(sidecar, token):
    settings.DAPR_HTTP_ENDPOINT = sidecar.http_url
    settings.DAPR_RUNTIME_HOST = "127.0.0.1"
    settings.DAPR_HTTP_PORT = sidecar.http_port
    settings.DAPR_GRPC_PORT = sidecar.grpc_port
    settings.DAPR_API_TOKEN = token
    settings.DAPR_HEALTH_TIMEOUT = 15
    return DaprClient(address=sidecar.grpc_address)


def test_sdk_with_token_works(token_sidecar):
    with _client(token_sidecar, TOKEN) as c:
        c.save_state("statestore", "tok-k", "v")
        assert c.get_state("statestore", "tok-k").data == b"v"
        assert c.get_metadata().application_id == token_sidecar.app_id
    settings.DAPR_API_TOKEN = None


def test_sdk_without_token_is_unauthenticated(token_sidecar):
    with _client(token_sidecar, None) as c:
        with pytest.raises(DaprGrpcError) as err:
            c.get_state("statestore", "tok-k")
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_http_requires_the_token_except_health(token_sidecar):
    base = token_sidecar.http_url
    with requests.Session() as s:
        s.trust_env = False
        r = s.get(f"{base}/v1.0/state/statestore/tok-k")
        assert r.status_code == 401
        assert r.text == "invalid api token\n"
        r = s.get(f"{base}/v1.0/state/statestore/tok-k", headers={"dapr-api-token": TOKEN})
        assert r.status_code in (200, 204)
        assert s.get(f"{base}/v1.0/healthz").status_code == 204
        assert s.get(f"{base}/v1.0/healthz/outbound").status_code == 204
