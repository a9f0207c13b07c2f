//! `spec.tracing.stdout`: each span as one log line, in the shape Dapr's own stdout
//! exporter logs it (under the `dapr.runtime.trace` scope), for debugging without a
//! collector.

use crate::context::hex;
use crate::span::FinishedSpan;

/// The line for one span: name, trace id, parent and span id, start and end.
pub fn line(s: &FinishedSpan) -> String {
    let parent = s.parent.map(|p| hex(&p)).unwrap_or_else(|| hex(&[0; 8]));
    format!(
        "[{}] Trace: {} Span: {}/{} Time: [{} ->  {}] Annotations: []",
        s.name,
        hex(&s.context.trace_id),
        parent,
        hex(&s.context.span_id),
        kit::time::rfc3339_nanos(s.start),
        kit::time::rfc3339_nanos(s.end),
    )
}

pub(super) fn export(batch: &[FinishedSpan]) {
    for s in batch {
        tracing::info!(target: "dapr.runtime.trace", "{}", line(s));
    }
}
