"""An HTTP app taking input binding events: `/cron-tick` counts cron events (and answers
with a state write, which Dapr performs), `/refused` answers 500, and nothing listens for
the binding `unwanted` (OPTIONS answers 404, so Dapr does not start it). `/ticks` reads back
what arrived."""

import json
import sys
import threading

from flask import Flask, jsonify, request

app = Flask("bindings-app")
_lock = threading.Lock()
_ticks = []


@app.route("/cron-tick", methods=["POST"])
def cron_tick():
    with _lock:
        _ticks.append({"headers": {k.lower(): v for k, v in request.headers.items()}, "body": request.data.decode()})
        n = len(_ticks)
    return jsonify({"storeName": "statestore", "state": [{"key": "cron-count", "value": n}]})


@app.route("/refused", methods=["POST"])
def refused():
    return "no", 500


@app.route("/ticks")
def ticks():
    with _lock:
        return jsonify(_ticks)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
