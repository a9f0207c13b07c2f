"""Service invocation judged by the official SDK: `DaprClient.invoke_method` through one
sidecar reaches a Flask app behind another sidecar, found by name resolution."""

import json
from pathlib import Path

import pytest
import requests

from conftest import invocation_pair

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    with invocation_pair(tmp_path_factory.mktemp("daprd-invoke"), "http", HERE / "invoke_app.py", []) as p:
        yield p


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
