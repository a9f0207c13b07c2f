//! Getting ended spans out of the process: one batching task per sidecar gathers them
//! and hands each batch to every configured exporter (OTLP over gRPC or HTTP, Zipkin,
//! stdout), as the Go SDK's batch span processor does: a bounded queue that drops rather
//! than blocks, a batch sent when full or when the schedule delay passes, and a final
//! flush at shutdown.

mod client;
pub mod otlp;
pub mod stdout;
pub mod zipkin;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::span::FinishedSpan;

/// What the batching task receives.
#[derive(Debug)]
pub(crate) enum Message {
    Span(Box<FinishedSpan>),
    /// Export what is queued, then answer.
    Flush(oneshot::Sender<()>),
}

static DROPPED: AtomicU64 = AtomicU64::new(0);

pub(crate) fn count_dropped() {
    DROPPED.fetch_add(1, Ordering::Relaxed);
}

/// Spans dropped because the export queue was full, since the process started.
pub fn dropped_spans() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Why an export failed; the batch is then dropped and the next one tried afresh.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("OTLP gRPC export: {0}")]
    Grpc(#[from] tonic::Status),
    #[error("{exporter} export: {reason}")]
    Http {
        exporter: &'static str,
        reason: String,
    },
    #[error("{0} export timed out")]
    Timeout(&'static str),
}

/// The process the spans come from: OTLP's resource, Zipkin's local endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// `service.name`: the app id unless `OTEL_SERVICE_NAME` says otherwise.
    pub service_name: String,
    /// Further attributes (`OTEL_RESOURCE_ATTRIBUTES`).
    pub attributes: Vec<(String, String)>,
}

/// One destination for spans.
pub enum Exporter {
    Stdout,
    Zipkin(zipkin::Zipkin),
    OtlpGrpc(otlp::Grpc),
    OtlpHttp(otlp::Http),
}

impl Exporter {
    fn name(&self) -> &'static str {
        match self {
            Exporter::Stdout => "stdout",
            Exporter::Zipkin(_) => "zipkin",
            Exporter::OtlpGrpc(_) => "otel (grpc)",
            Exporter::OtlpHttp(_) => "otel (http)",
        }
    }

    async fn export(&self, resource: &Resource, batch: &[FinishedSpan]) -> Result<(), ExportError> {
        match self {
            Exporter::Stdout => {
                stdout::export(batch);
                Ok(())
            }
            Exporter::Zipkin(z) => z.export(resource, batch).await,
            Exporter::OtlpGrpc(g) => g.export(resource, batch).await,
            Exporter::OtlpHttp(h) => h.export(resource, batch).await,
        }
    }
}

/// The Go SDK's batch processor settings (`OTEL_BSP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// `OTEL_BSP_SCHEDULE_DELAY`: the longest a span waits before it is sent.
    pub schedule_delay: Duration,
    /// `OTEL_BSP_MAX_QUEUE_SIZE`: spans waiting beyond this are dropped.
    pub max_queue: usize,
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`: a batch is sent as soon as it has this many.
    pub max_batch: usize,
    /// `OTEL_BSP_EXPORT_TIMEOUT`: the longest one export may take.
    pub export_timeout: Duration,
}

impl Default for Batching {
    fn default() -> Self {
        Self {
            schedule_delay: Duration::from_secs(5),
            max_queue: 2048,
            max_batch: 512,
            export_timeout: Duration::from_secs(30),
        }
    }
}

/// Starts the batching task; spans sent on the returned queue reach every exporter.
pub(crate) fn spawn(
    exporters: Vec<Exporter>,
    resource: Resource,
    batching: Batching,
) -> mpsc::Sender<Message> {
    let (tx, rx) = mpsc::channel(batching.max_queue.max(1));
    tokio::spawn(run(rx, exporters, resource, batching));
    tx
}

async fn run(
    mut rx: mpsc::Receiver<Message>,
    exporters: Vec<Exporter>,
    resource: Resource,
    batching: Batching,
) {
    let max_batch = batching.max_batch.max(1);
    let mut batch: Vec<FinishedSpan> = Vec::with_capacity(max_batch);
    let mut failing = vec![false; exporters.len()];
    loop {
        let deadline = tokio::time::sleep(batching.schedule_delay);
        tokio::pin!(deadline);
        let mut flushed = None;
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Message::Span(span)) => {
                        batch.push(*span);
                        if batch.len() >= max_batch {
                            break;
                        }
                    }
                    Some(Message::Flush(done)) => {
                        flushed = Some(done);
                        break;
                    }
                    None => {
                        send(&exporters, &resource, &batch, &batching, &mut failing).await;
                        return;
                    }
                },
                () = &mut deadline => break,
            }
        }
        if !batch.is_empty() {
            send(&exporters, &resource, &batch, &batching, &mut failing).await;
            batch.clear();
        }
        if let Some(done) = flushed {
            let _ = done.send(());
        }
    }
}

/// Sends one batch to every exporter. A failure is logged once when an exporter starts
/// failing and once when it recovers, not for every batch.
async fn send(
    exporters: &[Exporter],
    resource: &Resource,
    batch: &[FinishedSpan],
    batching: &Batching,
    failing: &mut [bool],
) {
    if batch.is_empty() {
        return;
    }
    for (exporter, failing) in exporters.iter().zip(failing.iter_mut()) {
        let result =
            match tokio::time::timeout(batching.export_timeout, exporter.export(resource, batch))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(ExportError::Timeout(exporter.name())),
            };
        match result {
            Ok(()) if *failing => {
                tracing::info!("trace export to {} works again", exporter.name());
                *failing = false;
            }
            Ok(()) => {}
            Err(e) if !*failing => {
                tracing::warn!("could not export {} span(s): {e}", batch.len());
                *failing = true;
            }
            Err(e) => tracing::debug!("could not export {} span(s): {e}", batch.len()),
        }
    }
}
