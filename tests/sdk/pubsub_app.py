"""An HTTP subscriber written with the official SDK's Flask extension (`dapr.ext.flask`):
programmatic subscriptions through `DaprApp.subscribe`, routes for a declarative
Subscription, and `/received/<topic>` to read back what arrived (with the headers Dapr
sent). `DROP`, `RETRY`, an unknown route (404) and a 500 are each one topic's answer."""

import json
import sys
import threading

from dapr.ext.flask import DaprApp
from flask import Flask, jsonify, request

app = Flask("pubsub-app")
dapr_app = DaprApp(app)
_lock = threading.Lock()
_received = {}


def _record(topic):
    event = json.loads(request.data) if request.data else None
    with _lock:
        _received.setdefault(topic, []).append(
            {
                "event": event,
                "content_type": request.headers.get("Content-Type", ""),
                "pubsubname_header": request.headers.get("pubsubname", ""),
                "traceparent": request.headers.get("traceparent", ""),
                "path": request.path,
            }
        )


@dapr_app.subscribe(pubsub="pubsub", topic="orders", route="/orders")
def orders():
    _record("orders")
    return jsonify({"status": "SUCCESS"})


@dapr_app.subscribe(pubsub="pubsub", topic="raw", route="/raw", metadata={"rawPayload": "true"})
def raw():
    _record("raw")
    return "", 200


@dapr_app.subscribe(pubsub="pubsub", topic="rejects", route="/rejects", dead_letter_topic="rejects-dead")
def rejects():
    _record("rejects")
    return jsonify({"status": "DROP"})


@dapr_app.subscribe(pubsub="pubsub", topic="flaky", route="/flaky", dead_letter_topic="flaky-dead")
def flaky():
    _record("flaky")
    return jsonify({"status": "RETRY"})


@dapr_app.subscribe(pubsub="pubsub", topic="broken", route="/broken", dead_letter_topic="broken-dead")
def broken():
    _record("broken")
    return "boom", 500


@dapr_app.subscribe(pubsub="pubsub", topic="rejects-dead", route="/dead/rejects")
def rejects_dead():
    _record("rejects-dead")
    return "", 200


@dapr_app.subscribe(pubsub="pubsub", topic="flaky-dead", route="/dead/flaky")
def flaky_dead():
    _record("flaky-dead")
    return "", 200


@dapr_app.subscribe(pubsub="pubsub", topic="broken-dead", route="/dead/broken")
def broken_dead():
    _record("broken-dead")
    return "", 200


@dapr_app.subscribe(pubsub="pubsub", topic="missing-dead", route="/dead/missing")
def missing_dead():
    _record("missing-dead")
    return "", 200


_seen_once = set()


# On `retrying`, whose inbound Resiliency policy retries: RETRY the first delivery of
# each event, SUCCESS the next.
@dapr_app.subscribe(pubsub="retrying", topic="once", route="/retry-once")
def retry_once():
    _record("once")
    event_id = json.loads(request.data)["id"]
    with _lock:
        first = event_id not in _seen_once
        _seen_once.add(event_id)
    return jsonify({"status": "RETRY" if first else "SUCCESS"})


@dapr_app.subscribe(pubsub="retrying", topic="never", route="/retry-never", dead_letter_topic="never-dead")
def retry_never():
    _record("never")
    return jsonify({"status": "RETRY"})


@dapr_app.subscribe(pubsub="retrying", topic="never-dead", route="/dead/never")
def never_dead():
    _record("never-dead")
    return "", 200


@dapr_app.subscribe(pubsub="pubsub", topic="outbox-orders", route="/outbox")
def outbox():
    _record("outbox-orders")
    return "", 200


# Routes of the declarative Subscriptions (resources folder).
@app.route("/widgets/big", methods=["POST"])
def widgets_big():
    _record("widgets-big")
    return "", 200


@app.route("/widgets/small", methods=["POST"])
def widgets_small():
    _record("widgets-small")
    return "", 200


@app.route("/received/<topic>")
def received(topic):
    with _lock:
        return jsonify(_received.get(topic, []))


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
