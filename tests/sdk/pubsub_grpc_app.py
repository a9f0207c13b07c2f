"""A gRPC subscriber written with the official dapr-ext-grpc extension: `grpc-orders`
delivered to a handler that keeps each event, `grpc-drop` answered DROP, and a
`received` method (called through service invocation) that returns what arrived."""

import json
import sys
import threading

from cloudevents.sdk.event import v1
from dapr.clients.grpc._response import TopicEventResponse
from dapr.ext.grpc import App, InvokeMethodRequest, InvokeMethodResponse

app = App()
_lock = threading.Lock()
_received = []


@app.subscribe(pubsub_name="pubsub", topic="grpc-orders")
def orders(event: v1.Event) -> TopicEventResponse:
    data = event.Data()
    with _lock:
        _received.append(
            {
                "id": event.EventID(),
                "source": event.Source(),
                "type": event.EventType(),
                "content_type": event.ContentType(),
                "data": data.decode() if isinstance(data, (bytes, bytearray)) else data,
                "topic": event.Extensions().get("topic"),
            }
        )
    return TopicEventResponse("success")


@app.subscribe(pubsub_name="pubsub", topic="grpc-drop", dead_letter_topic="grpc-drop-dead")
def drop(event: v1.Event) -> TopicEventResponse:
    return TopicEventResponse("drop")


@app.subscribe(pubsub_name="pubsub", topic="grpc-drop-dead")
def drop_dead(event: v1.Event) -> TopicEventResponse:
    with _lock:
        _received.append({"id": event.EventID(), "dead": True})
    return TopicEventResponse("success")


@app.method(name="received")
def received(request: InvokeMethodRequest) -> InvokeMethodResponse:
    with _lock:
        return InvokeMethodResponse(json.dumps(_received).encode(), "application/json")


app.run(int(sys.argv[1]))
