"""A gRPC app taking input binding events through dapr-ext-grpc's `@app.binding`; the
`received` method (through service invocation) returns the count."""

import json
import sys
import threading

from dapr.ext.grpc import App, BindingRequest, InvokeMethodRequest, InvokeMethodResponse

app = App()
_lock = threading.Lock()
_events = []


@app.binding("grpc-cron")
def on_cron(request: BindingRequest):
    with _lock:
        _events.append(dict(request.binding_metadata))


@app.method(name="received")
def received(request: InvokeMethodRequest) -> InvokeMethodResponse:
    with _lock:
        return InvokeMethodResponse(json.dumps(_events).encode(), "application/json")


app.run(int(sys.argv[1]))
