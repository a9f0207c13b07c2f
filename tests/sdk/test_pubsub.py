"""Publish and subscribe through our sidecar with the official SDK: the client publishes
(gRPC `PublishEvent`), a Flask app written with `dapr.ext.flask` subscribes
programmatically, declarative `Subscription` files (v1alpha1 and v2alpha1, scoped, with
CEL rules) route to app paths, and a gRPC app written with `dapr-ext-grpc` subscribes
through `ListTopicSubscriptions` / `OnTopicEvent`. Dapr's status semantics are checked end
to end: SUCCESS, DROP and 404 to the dead-letter topic, RETRY and 500 dead-lettered."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
import requests
from dapr.proto import api_service_v1, api_v1

import conftest
from conftest import _component_yaml, _free_ports, _sdk_client, _start_sidecar, _stop_sidecar

HERE = Path(__file__).parent
WAIT = 15


def _start_app(script: Path, port: int) -> subprocess.Popen:
    app = subprocess.Popen(
        [sys.executable, str(script), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return app
        except OSError:
            assert app.poll() is None, f"{script.name} exited with {app.returncode}"
            assert time.monotonic() < deadline, f"{script.name} did not start"
            time.sleep(0.1)


def _eventually(fetch, check, what: str):
    deadline = time.monotonic() + WAIT
    last = None
    while time.monotonic() < deadline:
        last = fetch()
        if check(last):
            return last
        time.sleep(0.1)
    pytest.fail(f"{what}: last seen {last!r}", pytrace=False)


DECLARATIVE = """\
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: widgets
spec:
  pubsubname: pubsub
  topic: widgets
  routes:
    rules:
      - match: event.data.size > 10
        path: /widgets/big
    default: /widgets/small
scopes: [{app_id}]
---
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata:
  name: not-mine
spec:
  pubsubname: pubsub
  topic: elsewhere
  route: /widgets/small
scopes: [someone-else]
---
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata:
  name: missing
spec:
  pubsubname: pubsub
  topic: missing
  route: /no/such/route
  deadLetterTopic: missing-dead
"""


RESILIENCY = """\
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: pubsub-retries
spec:
  policies:
    retries:
      three:
        policy: constant
        duration: 50ms
        maxRetries: 3
  targets:
    components:
      retrying:
        inbound:
          retry: three
"""


@pytest.fixture(scope="module")
def http_subscriber(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("daprd-pubsub-http")
    (app_port,) = _free_ports(1)
    app = _start_app(HERE / "pubsub_app.py", app_port)
    sidecar = None
    try:
        resources = workdir / "resources"
        resources.mkdir()
        (resources / "pubsub.yaml").write_text(_component_yaml("pubsub", "pubsub.in-memory", {}))
        # The scoped Subscription names the app id the sidecar will get.
        app_id = f"sdk-pubsub-http-{conftest._RUN_ID}"
        (resources / "subscriptions.yaml").write_text(DECLARATIVE.format(app_id=app_id))
        (resources / "outboxstore.yaml").write_text(
            _component_yaml(
                "outboxstore", "state.in-memory", {"outboxPublishPubsub": "pubsub", "outboxPublishTopic": "outbox-orders"}
            )
        )
        (resources / "retrying.yaml").write_text(_component_yaml("retrying", "pubsub.in-memory", {}))
        (resources / "resiliency.yaml").write_text(RESILIENCY)
        (resources / "scoped.yaml").write_text(
            _component_yaml(
                "scoped",
                "pubsub.in-memory",
                {"publishingScopes": f"{app_id}=mine,secret;other-app=", "protectedTopics": "secret,vault"},
            )
        )
        sidecar_dir = workdir / "sidecar"
        sidecar_dir.mkdir()
        sidecar = _start_sidecar("pubsub-http", sidecar_dir, resources, dict(os.environ),
                                 extra=["--app-port", str(app_port)])
        assert sidecar.app_id == app_id
        client = _sdk_client(sidecar)
        try:
            yield client, sidecar, f"http://127.0.0.1:{app_port}"
        finally:
            client.close()
    finally:
        if sidecar is not None:
            _stop_sidecar(sidecar)
        app.terminate()
        app.wait(timeout=10)


def _received(app_url: str, topic: str):
    return requests.get(f"{app_url}/received/{topic}", timeout=5).json()


def test_programmatic_http_subscriber_gets_the_cloudevent(http_subscriber):
    client, sidecar, app_url = http_subscriber
    client.publish_event("pubsub", "orders", json.dumps({"orderId": 7}), data_content_type="application/json")
    got = _eventually(lambda: _received(app_url, "orders"), lambda r: len(r) >= 1, "order delivered")
    ev = got[0]["event"]
    assert ev["data"] == {"orderId": 7}
    assert ev["source"] == sidecar.app_id
    assert ev["type"] == "com.dapr.event.sent"
    assert ev["specversion"] == "1.0"
    assert ev["topic"] == "orders" and ev["pubsubname"] == "pubsub"
    assert ev["datacontenttype"] == "application/json"
    assert got[0]["content_type"] == "application/cloudevents+json"
    assert got[0]["pubsubname_header"] == "pubsub"


def test_every_message_arrives_once_in_order(http_subscriber):
    client, _, app_url = http_subscriber
    before = len(_received(app_url, "orders"))
    for i in range(50):
        client.publish_event("pubsub", "orders", json.dumps({"n": i}), data_content_type="application/json")
    got = _eventually(lambda: _received(app_url, "orders"), lambda r: len(r) >= before + 50, "50 orders")
    ns = [e["event"]["data"]["n"] for e in got[before:]]
    assert ns == list(range(50))


def test_raw_payload_subscription_gets_a_synthesized_event(http_subscriber):
    client, _, app_url = http_subscriber
    client.publish_event("pubsub", "raw", b"\x00\x01raw", publish_metadata={"rawPayload": "true"})
    got = _eventually(lambda: _received(app_url, "raw"), lambda r: len(r) >= 1, "raw delivered")
    ev = got[0]["event"]
    assert ev["data_base64"] == "AAFyYXc="
    assert ev["datacontenttype"] == "application/octet-stream"


@pytest.mark.parametrize("topic", ["rejects", "flaky", "broken"])
def test_drop_retry_and_errors_go_to_the_dead_letter_topic(http_subscriber, topic):
    client, _, app_url = http_subscriber
    client.publish_event("pubsub", topic, json.dumps({"t": topic}), data_content_type="application/json")
    dead = _eventually(lambda: _received(app_url, f"{topic}-dead"), lambda r: len(r) >= 1, f"{topic} dead-lettered")
    assert dead[0]["event"]["data"] == {"t": topic}
    assert dead[0]["event"]["topic"] == topic, "the dead letter is the message as it came"
    assert len(_received(app_url, topic)) == 1, "delivered once, not retried by the broker"


def test_a_route_the_app_does_not_have_is_dropped_to_the_dead_letter(http_subscriber):
    client, _, app_url = http_subscriber
    client.publish_event("pubsub", "missing", "x")
    dead = _eventually(lambda: _received(app_url, "missing-dead"), lambda r: len(r) >= 1, "404 dead-lettered")
    assert dead[0]["event"]["data"] == "x"


def test_declarative_rules_route_by_cel_match(http_subscriber):
    client, _, app_url = http_subscriber
    client.publish_event("pubsub", "widgets", json.dumps({"size": 20}), data_content_type="application/json")
    client.publish_event("pubsub", "widgets", json.dumps({"size": 2}), data_content_type="application/json")
    big = _eventually(lambda: _received(app_url, "widgets-big"), lambda r: len(r) >= 1, "big widget")
    small = _eventually(lambda: _received(app_url, "widgets-small"), lambda r: len(r) >= 1, "small widget")
    assert [e["event"]["data"]["size"] for e in big] == [20]
    assert [e["event"]["data"]["size"] for e in small] == [2]
    # The subscription scoped to another app delivers nothing here.
    client.publish_event("pubsub", "elsewhere", json.dumps({"size": 1}), data_content_type="application/json")
    time.sleep(0.5)
    assert len(_received(app_url, "widgets-small")) == 1


def test_metadata_lists_every_subscription(http_subscriber):
    _, sidecar, _ = http_subscriber
    # The SDK's metadata object has no subscriptions: ask the gRPC API directly.
    with grpc.insecure_channel(sidecar.grpc_address) as channel:
        resp = api_service_v1.DaprStub(channel).GetMetadata(api_v1.GetMetadataRequest(), timeout=10)
    by_topic = {s.topic: s for s in resp.subscriptions}
    assert {"orders", "raw", "rejects", "widgets", "missing"} <= set(by_topic)
    assert "elsewhere" not in by_topic, "out of scope"
    assert by_topic["widgets"].type == api_v1.PubsubSubscriptionType.DECLARATIVE
    assert by_topic["orders"].type == api_v1.PubsubSubscriptionType.PROGRAMMATIC
    rules = by_topic["widgets"].rules.rules
    assert [(r.match, r.path) for r in rules] == [("event.data.size > 10", "/widgets/big"), ("", "/widgets/small")]
    assert by_topic["rejects"].dead_letter_topic == "rejects-dead"
    http = requests.get(f"{_sidecar_url(http_subscriber)}/v1.0/metadata", timeout=5).json()
    h = {s["topic"]: s for s in http["subscriptions"]}
    assert h["orders"]["type"] == "PROGRAMMATIC"
    assert h["orders"]["pubsubname"] == "pubsub"
    assert h["orders"]["rules"] == [{"path": "/orders"}]
    assert h["widgets"]["type"] == "DECLARATIVE"
    assert h["rejects"]["deadLetterTopic"] == "rejects-dead"
    assert h["raw"]["metadata"] == {"rawPayload": "true"}


def _sidecar_url(fixture):
    return fixture[1].http_url


@pytest.fixture(scope="module")
def grpc_subscriber(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("daprd-pubsub-grpc")
    (app_port,) = _free_ports(1)
    app = _start_app(HERE / "pubsub_grpc_app.py", app_port)
    sidecar = None
    try:
        sidecar = _start_sidecar("pubsub-grpc", workdir, None, dict(os.environ),
                                 extra=["--app-port", str(app_port), "--app-protocol", "grpc"])
        client = _sdk_client(sidecar)
        try:
            yield client, sidecar
        finally:
            client.close()
    finally:
        if sidecar is not None:
            _stop_sidecar(sidecar)
        app.terminate()
        app.wait(timeout=10)


def _grpc_received(client, sidecar):
    return json.loads(client.invoke_method(sidecar.app_id, "received", data=b"").data)


def test_grpc_subscriber_gets_events_through_on_topic_event(grpc_subscriber):
    client, sidecar = grpc_subscriber
    client.publish_event("pubsub", "grpc-orders", json.dumps({"a": 1}), data_content_type="application/json")
    client.publish_event("pubsub", "grpc-orders", "plain text")
    got = _eventually(lambda: _grpc_received(client, sidecar), lambda r: len(r) >= 2, "gRPC deliveries")
    first, second = got[0], got[1]
    assert first["source"] == sidecar.app_id
    assert first["type"] == "com.dapr.event.sent"
    assert json.loads(first["data"]) == {"a": 1}
    assert first["topic"] == "grpc-orders"
    assert second["data"] == "plain text"
    assert second["content_type"] == "text/plain"


def test_grpc_drop_goes_to_the_dead_letter_topic(grpc_subscriber):
    client, sidecar = grpc_subscriber
    client.publish_event("pubsub", "grpc-drop", "bye")
    _eventually(
        lambda: _grpc_received(client, sidecar),
        lambda r: any(e.get("dead") for e in r),
        "gRPC DROP dead-lettered",
    )


@pytest.fixture(scope="module")
def appless_sidecar(tmp_path_factory):
    """A sidecar with no app at all, on the embedded default pub/sub: streaming
    subscribers need no app port."""
    workdir = tmp_path_factory.mktemp("daprd-pubsub-stream")
    sidecar = _start_sidecar("pubsub-stream", workdir, None, dict(os.environ))
    client = _sdk_client(sidecar)
    try:
        yield client, sidecar
    finally:
        client.close()
        _stop_sidecar(sidecar)


def test_streaming_subscription_sync(appless_sidecar):
    client, sidecar = appless_sidecar
    sub = client.subscribe(pubsub_name="pubsub", topic="stream-sync")
    try:
        for i in range(3):
            client.publish_event("pubsub", "stream-sync", json.dumps({"i": i}), data_content_type="application/json")
        got = []
        for _ in range(3):
            msg = sub.next_message()
            assert msg is not None
            got.append(json.loads(msg.raw_data())["i"])
            assert msg.topic() == "stream-sync"
            assert msg.pubsub_name() == "pubsub"
            assert msg.source() == sidecar.app_id
            sub.respond_success(msg)
        assert got == [0, 1, 2]
        listed = requests.get(f"{sidecar.http_url}/v1.0/metadata", timeout=5).json()["subscriptions"]
        assert any(s["topic"] == "stream-sync" and s["type"] == "STREAMING" for s in listed)
    finally:
        sub.close()
    # Once closed, the subscription is gone from the metadata.
    _eventually(
        lambda: requests.get(f"{sidecar.http_url}/v1.0/metadata", timeout=5).json().get("subscriptions", []),
        lambda subs: not any(s["topic"] == "stream-sync" for s in subs),
        "streaming subscription removed",
    )


def test_streaming_subscription_drop_goes_to_dead_letter(appless_sidecar):
    client, _ = appless_sidecar
    dead = client.subscribe(pubsub_name="pubsub", topic="stream-dead")
    sub = client.subscribe(pubsub_name="pubsub", topic="stream-drop", dead_letter_topic="stream-dead")
    try:
        client.publish_event("pubsub", "stream-drop", "unwanted")
        msg = sub.next_message()
        assert msg.raw_data() == b"unwanted"
        sub.respond_drop(msg)
        d = dead.next_message()
        assert d.raw_data() == b"unwanted"
        assert d.topic() == "stream-dead"
        dead.respond_success(d)
    finally:
        sub.close()
        dead.close()


def test_streaming_subscription_asyncio(appless_sidecar):
    import asyncio

    from dapr.aio.clients import DaprClient as AsyncDaprClient

    _, sidecar = appless_sidecar

    async def run():
        async with AsyncDaprClient(address=sidecar.grpc_address) as c:
            sub = await c.subscribe(pubsub_name="pubsub", topic="stream-async")
            try:
                await c.publish_event("pubsub", "stream-async", "hello async")
                msg = await asyncio.wait_for(sub.next_message(), timeout=WAIT)
                await sub.respond_success(msg)
                return msg.raw_data(), msg.data_content_type()
            finally:
                await sub.close()

    data, ct = asyncio.run(run())
    assert data == b"hello async"
    assert ct == "text/plain"


def test_streaming_subscription_needs_a_known_pubsub(appless_sidecar):
    client, _ = appless_sidecar
    with pytest.raises(Exception) as err:
        client.subscribe(pubsub_name="nope", topic="t")
    assert "nope" in str(err.value)


def test_sdk_bulk_publish_delivers_every_entry(http_subscriber):
    client, _, app_url = http_subscriber
    before = len(_received(app_url, "orders"))
    resp = client.publish_events(
        "pubsub", "orders", [json.dumps({"bulk": i}) for i in range(5)], data_content_type="application/json"
    )
    assert list(resp.failed_entries) == []
    got = _eventually(lambda: _received(app_url, "orders"), lambda r: len(r) >= before + 5, "bulk delivered")
    assert sorted(e["event"]["data"]["bulk"] for e in got[before:]) == list(range(5))


def test_http_bulk_publish_and_its_errors(http_subscriber):
    _, sidecar, app_url = http_subscriber
    before = len(_received(app_url, "orders"))
    entries = [
        {"entryId": "1", "event": {"http": 1}, "contentType": "application/json"},
        {"entryId": "2", "event": "text entry", "contentType": "text/plain", "metadata": {"cloudevent.id": "fixed"}},
    ]
    for version in ("v1.0-alpha1", "v1.0"):
        r = requests.post(f"{sidecar.http_url}/{version}/publish/bulk/pubsub/orders", json=entries, timeout=5)
        assert r.status_code == 204, r.text
    got = _eventually(lambda: _received(app_url, "orders"), lambda r: len(r) >= before + 4, "HTTP bulk delivered")
    fixed = [e["event"] for e in got[before:] if e["event"]["id"] == "fixed"]
    assert len(fixed) == 2 and fixed[0]["data"] == "text entry"
    bad = requests.post(f"{sidecar.http_url}/v1.0/publish/bulk/pubsub/orders", data=b"{nope", timeout=5)
    assert bad.status_code == 400 and bad.json()["errorCode"] == "ERR_PUBSUB_EVENTS_SER"
    dup = [{"entryId": "1", "event": "a", "contentType": "text/plain"}] * 2
    r = requests.post(f"{sidecar.http_url}/v1.0/publish/bulk/pubsub/orders", json=dup, timeout=5)
    assert r.status_code == 400 and "entryId is duplicated" in r.json()["message"]
    mismatch = [{"entryId": "1", "event": 3, "contentType": "text/plain"}]
    r = requests.post(f"{sidecar.http_url}/v1.0/publish/bulk/pubsub/orders", json=mismatch, timeout=5)
    assert r.status_code == 400 and r.json()["errorCode"] == "ERR_PUBSUB_EVENTS_SER"
    r = requests.post(f"{sidecar.http_url}/v1.0/publish/bulk/nope/orders", json=entries, timeout=5)
    assert r.status_code == 404 and r.json()["errorCode"] == "ERR_PUBSUB_NOT_FOUND"
    time.sleep(0.3)
    assert len(_received(app_url, "orders")) == before + 4, "refused requests published nothing"


def test_topic_scopes_refuse_with_daprs_error(http_subscriber):
    _, sidecar, _ = http_subscriber
    url = f"{sidecar.http_url}/v1.0/publish/scoped"
    assert requests.post(f"{url}/mine", data="x", timeout=5).status_code == 204
    assert requests.post(f"{url}/secret", data="x", timeout=5).status_code == 204, "protected but scoped"
    for topic in ("other", "vault"):
        r = requests.post(f"{url}/{topic}", data="x", timeout=5)
        assert r.status_code == 403, (topic, r.text)
        body = r.json()
        assert body["errorCode"] == "ERR_PUBSUB_FORBIDDEN"
        assert body["message"] == f"topic {topic} is not allowed for app id {sidecar.app_id}"


def test_bad_raw_payload_flag_is_refused(http_subscriber):
    _, sidecar, _ = http_subscriber
    r = requests.post(f"{sidecar.http_url}/v1.0/publish/pubsub/orders?metadata.rawPayload=maybe", data="x", timeout=5)
    assert r.status_code == 400
    assert r.json()["errorCode"] == "ERR_PUBSUB_REQUEST_METADATA"
    assert "rawPayload value must be a valid boolean: actual is 'maybe'" in r.json()["message"]


def test_inbound_resiliency_retries_then_success(http_subscriber):
    client, _, app_url = http_subscriber
    client.publish_event("retrying", "once", json.dumps({"x": 1}), data_content_type="application/json")
    got = _eventually(lambda: _received(app_url, "once"), lambda r: len(r) >= 2, "RETRY then SUCCESS")
    assert got[0]["event"]["id"] == got[1]["event"]["id"], "the same event delivered again"
    time.sleep(0.3)
    assert len(_received(app_url, "once")) == 2, "no more after SUCCESS"


def test_inbound_retries_run_out_then_dead_letter(http_subscriber):
    client, _, app_url = http_subscriber
    client.publish_event("retrying", "never", "doomed")
    _eventually(lambda: _received(app_url, "never-dead"), lambda r: len(r) >= 1, "dead-lettered after retries")
    assert len(_received(app_url, "never")) == 4, "one delivery and three retries"


def test_outbox_publishes_committed_transactions_only(http_subscriber):
    from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType

    client, _, app_url = http_subscriber
    client.execute_state_transaction(
        "outboxstore",
        [TransactionalStateOperation(key="order-1", data=json.dumps({"total": 5}), operation_type=TransactionOperationType.upsert,
                                     metadata={"contentType": "application/json"})],
    )
    got = _eventually(lambda: _received(app_url, "outbox-orders"), lambda r: len(r) >= 1, "outbox message")
    ev = got[0]["event"]
    assert ev["data"] == {"total": 5}
    assert ev["topic"] == "outbox-orders" and ev["pubsubname"] == "pubsub"
    assert json.loads(client.get_state("outboxstore", "order-1").data) == {"total": 5}

    # A projection: the one value is stored, the other published.
    client.execute_state_transaction(
        "outboxstore",
        [
            TransactionalStateOperation(key="order-2", data="stored value", operation_type=TransactionOperationType.upsert),
            TransactionalStateOperation(key="order-2", data="published value", operation_type=TransactionOperationType.upsert,
                                        metadata={"outbox.projection": "true"}),
        ],
    )
    got = _eventually(lambda: _received(app_url, "outbox-orders"), lambda r: len(r) >= 2, "projected message")
    assert got[1]["event"]["data"] == "published value"
    assert client.get_state("outboxstore", "order-2").data == b"stored value"

    # A transaction that fails publishes nothing and stores nothing.
    with pytest.raises(Exception):
        client.execute_state_transaction(
            "outboxstore",
            [TransactionalStateOperation(key="order-3", data="never", etag="999", operation_type=TransactionOperationType.upsert)],
        )
    time.sleep(2.5)
    assert len(_received(app_url, "outbox-orders")) == 2, "no message for a failed transaction"
    assert client.get_state("outboxstore", "order-3").data in (b"", None)
