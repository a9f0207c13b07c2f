"""A gRPC app written with the official dapr-ext-grpc extension: a `say_hello` method that
echoes its input, and `fail` that raises."""

import sys

from dapr.ext.grpc import App, InvokeMethodRequest, InvokeMethodResponse

app = App()


@app.method(name="say_hello")
def say_hello(request: InvokeMethodRequest) -> InvokeMethodResponse:
    return InvokeMethodResponse(b"hello " + request.data, "text/plain; charset=UTF-8")


@app.method(name="fail")
def fail(request: InvokeMethodRequest) -> InvokeMethodResponse:
    raise ValueError("the app refused")


app.run(int(sys.argv[1]))
