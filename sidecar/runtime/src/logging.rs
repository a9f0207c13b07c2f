//! Log output in Dapr's shapes. With `--log-as-json` every line is one JSON object with
//! the fields dapr/kit's logger writes (`time`, `level`, `type`, `msg`, `scope`,
//! `instance`, `app_id`, `ver`), so log pipelines built for Dapr read ours unchanged.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats events as Dapr's JSON log lines.
pub struct DaprJson {
    app_id: String,
    instance: String,
    version: String,
}

impl DaprJson {
    pub fn new(app_id: &str, version: &str) -> Self {
        let instance = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim()
            .to_string();
        Self {
            app_id: app_id.to_string(),
            instance,
            version: version.to_string(),
        }
    }
}

/// Collects an event's message and fields into one `msg`, fields as `key=value`.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

impl<S, N> FormatEvent<S, N> for DaprJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut msg = Message::default();
        event.record(&mut msg);
        let meta = event.metadata();
        let level = meta.level().as_str().to_ascii_lowercase();
        let target = meta.target();
        // dapr/kit scopes are `dapr.<area>`; a target that already is one is kept.
        let scope = if target.starts_with("dapr.") {
            target.to_string()
        } else {
            "dapr.runtime".to_string()
        };
        let line = serde_json::json!({
            "time": kit::time::rfc3339_nanos(std::time::SystemTime::now()),
            "level": level,
            "type": "log",
            "msg": msg.0.trim_start(),
            "scope": scope,
            "instance": self.instance,
            "app_id": self.app_id,
            "ver": self.version,
        });
        writeln!(writer, "{line}")
    }
}
