//! HTTP methods and the `HTTPExtension` verbs that carry them in protobuf messages.

use dapr::dapr::proto::common::v1::http_extension;
use http::Method;

/// The `HTTPExtension` verb for an HTTP method.
pub fn verb_of(method: &Method) -> http_extension::Verb {
    use http_extension::Verb;
    match *method {
        Method::GET => Verb::Get,
        Method::HEAD => Verb::Head,
        Method::POST => Verb::Post,
        Method::PUT => Verb::Put,
        Method::DELETE => Verb::Delete,
        Method::CONNECT => Verb::Connect,
        Method::OPTIONS => Verb::Options,
        Method::TRACE => Verb::Trace,
        Method::PATCH => Verb::Patch,
        _ => Verb::None,
    }
}

/// The HTTP method an `HTTPExtension` verb names; `NONE` (gRPC callers) becomes POST.
pub fn method_of(verb: i32) -> Method {
    use http_extension::Verb;
    match Verb::try_from(verb).unwrap_or(Verb::None) {
        Verb::Get => Method::GET,
        Verb::Head => Method::HEAD,
        Verb::Put => Method::PUT,
        Verb::Delete => Method::DELETE,
        Verb::Connect => Method::CONNECT,
        Verb::Options => Method::OPTIONS,
        Verb::Trace => Method::TRACE,
        Verb::Patch => Method::PATCH,
        Verb::Post | Verb::None => Method::POST,
    }
}
