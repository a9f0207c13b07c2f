//! Spans: started by a front door, annotated by whoever serves the call, ended by the front
//! door again. A span not sampled (or with no exporter to go to) records nothing; it only
//! carries its context on to the next hop, which is what keeps a trace whole.

use std::borrow::Cow;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use tokio::sync::mpsc;

use crate::SpanContext;
use crate::export::Message;

/// A span's role, as OTLP and Zipkin name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

/// A span that has ended, on its way to the exporters.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedSpan {
    pub context: SpanContext,
    /// The parent's span id, when the span has a parent.
    pub parent: Option<[u8; 8]>,
    pub name: Cow<'static, str>,
    pub kind: SpanKind,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(Cow<'static, str>, String)>,
    /// The error status's description; `None` is OpenTelemetry's `Unset`.
    pub error: Option<String>,
}

/// What is being recorded of a sampled span.
#[derive(Debug)]
struct Recording {
    name: Cow<'static, str>,
    kind: SpanKind,
    parent: Option<[u8; 8]>,
    start: SystemTime,
    attributes: Vec<(Cow<'static, str>, String)>,
    error: Option<String>,
}

#[derive(Debug)]
struct Shared {
    context: SpanContext,
    recording: Option<Mutex<Recording>>,
}

/// The owner of a span: ending it (or dropping it) sends it to the exporters.
#[derive(Debug)]
pub struct Span {
    shared: Arc<Shared>,
    sink: Option<mpsc::Sender<Message>>,
}

/// Editing access to a recording span's name and attributes.
pub struct Annotations<'a>(&'a mut Recording);

impl Annotations<'_> {
    /// Renames the span (Dapr names API spans after what they did once they know it).
    pub fn set_name(&mut self, name: impl Into<Cow<'static, str>>) {
        self.0.name = name.into();
    }

    /// Sets an attribute; an empty value is left out, as Dapr leaves it out, and a key set
    /// twice keeps its last value.
    pub fn set(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<String>) {
        let value = value.into();
        if value.is_empty() {
            return;
        }
        let key = key.into();
        match self.0.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.attributes.push((key, value)),
        }
    }

    /// Marks the span failed with a description (OpenTelemetry's `Error` status).
    pub fn set_error(&mut self, description: impl Into<String>) {
        self.0.error = Some(description.into());
    }
}

impl Span {
    pub(crate) fn new(
        context: SpanContext,
        record: Option<(Cow<'static, str>, SpanKind, Option<[u8; 8]>)>,
        sink: Option<mpsc::Sender<Message>>,
    ) -> Self {
        let recording = record.map(|(name, kind, parent)| {
            Mutex::new(Recording {
                name,
                kind,
                parent,
                start: SystemTime::now(),
                attributes: Vec::new(),
                error: None,
            })
        });
        let sink = recording.as_ref().and(sink);
        Self {
            shared: Arc::new(Shared { context, recording }),
            sink,
        }
    }

    /// The context the next hop continues.
    pub fn context(&self) -> &SpanContext {
        &self.shared.context
    }

    /// Whether anything set on this span will be exported.
    pub fn is_recording(&self) -> bool {
        self.shared.recording.is_some()
    }

    /// Edits the span if it is recording; a span that is not costs nothing more.
    pub fn annotate(&self, edit: impl FnOnce(&mut Annotations<'_>)) {
        self.shared.annotate(edit);
    }

    /// Runs `fut` with this span as the current one, so that what it calls (the app
    /// channel, other sidecars) passes this span's context on and can annotate it.
    pub fn scope<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> + use<F> {
        CURRENT.scope(self.shared.clone(), fut)
    }

    /// Ends the span now.
    pub fn end(self) {
        drop(self);
    }
}

impl Shared {
    fn annotate(&self, edit: impl FnOnce(&mut Annotations<'_>)) {
        if let Some(rec) = &self.recording {
            let mut rec = rec.lock().unwrap_or_else(PoisonError::into_inner);
            edit(&mut Annotations(&mut rec));
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        let Some(sink) = self.sink.take() else {
            return;
        };
        let Some(rec) = &self.shared.recording else {
            return;
        };
        let rec = {
            let mut rec = rec.lock().unwrap_or_else(PoisonError::into_inner);
            Recording {
                name: std::mem::take(&mut rec.name),
                kind: rec.kind,
                parent: rec.parent,
                start: rec.start,
                attributes: std::mem::take(&mut rec.attributes),
                error: rec.error.take(),
            }
        };
        let finished = FinishedSpan {
            context: self.shared.context.clone(),
            parent: rec.parent,
            name: rec.name,
            kind: rec.kind,
            start: rec.start,
            end: SystemTime::now(),
            attributes: rec.attributes,
            error: rec.error,
        };
        // A full queue drops the span rather than slow the call down, as the Go SDK's
        // batch processor does.
        if sink.try_send(Message::Span(Box::new(finished))).is_err() {
            crate::export::count_dropped();
        }
    }
}

tokio::task_local! {
    static CURRENT: Arc<Shared>;
}

/// The context of the span the current task serves, for the next hop to continue.
pub fn current_context() -> Option<SpanContext> {
    CURRENT.try_with(|s| s.context.clone()).ok()
}

/// Annotates the span the current task serves, if it is recording. Handlers call this to
/// add what only they know (the store a gRPC request names, say).
pub fn annotate_current(edit: impl FnOnce(&mut Annotations<'_>)) {
    let _ = CURRENT.try_with(|s| s.annotate(edit));
}
