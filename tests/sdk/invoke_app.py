"""A Flask app used as an invocation target: it echoes what it received, as JSON."""

import sys

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def echo(path):
    status = int(request.headers.get("x-status", "200"))
    return (
        jsonify(
            method=request.method,
            path=path,
            query=request.query_string.decode(),
            body=request.get_data(as_text=True),
            content_type=request.headers.get("content-type"),
            caller=request.headers.get("dapr-caller-app-id"),
        ),
        status,
    )


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]))
