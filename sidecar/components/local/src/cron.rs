//! `bindings.cron`: an input binding that fires on a schedule, with Dapr's syntax (that of
//! robfig/cron with optional seconds): five fields (`*/5 * * * *`), or six with seconds
//! first (`*/15 * * * * *`), names for months and weekdays, `?`, ranges, lists and steps,
//! and the descriptors `@yearly` ... `@hourly` and `@every <duration>`. Times are UTC (the
//! zone a container runs in); each event carries `timeZone` and `readTimeUTC`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use components_core::bindings::{Binding, BindingError, ReadEvent, ReadHandler, Reading};
use components_core::{Component, ComponentError, Properties};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Every(Duration),
    Fields(Fields),
}

/// One bit per allowed value; the star flags keep robfig's day-matching rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    second: u64,
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    dom_star: bool,
    dow_star: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn value(text: &str, names: &[&str], first_name: u32) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(i as u32 + first_name);
    }
    text.parse()
        .map_err(|_| format!("failed to parse int from {text}"))
}

/// One field: `*`, `?`, `a`, `a-b`, each with an optional `/step`, comma-separated.
fn field(
    text: &str,
    min: u32,
    max: u32,
    names: &[&str],
    first_name: u32,
) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                Some(
                    s.parse::<u32>()
                        .map_err(|_| format!("failed to parse int from {s}"))?,
                ),
            ),
            None => (part, None),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            star = step.is_none();
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, first_name)?, value(b, names, first_name)?)
        } else {
            let v = value(range, names, first_name)?;
            (v, if step.is_some() { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("beyond range ({min}-{max}): {part}"));
        }
        let step = step.unwrap_or(1);
        if step == 0 {
            return Err(format!("step of range should be a positive number: {part}"));
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, star))
}

impl Schedule {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        if let Some(rest) = spec.strip_prefix("@every ") {
            let d = kit::duration::go(rest.trim())
                .map_err(|e| format!("failed to parse duration {spec}: {e}"))?;
            // robfig rounds below a second up to one second.
            return Ok(Schedule::Every(d.max(Duration::from_secs(1))));
        }
        let expanded = match spec {
            "@yearly" | "@annually" => "0 0 0 1 1 *",
            "@monthly" => "0 0 0 1 * *",
            "@weekly" => "0 0 0 * * 0",
            "@daily" | "@midnight" => "0 0 0 * * *",
            "@hourly" => "0 0 * * * *",
            s if s.starts_with('@') => return Err(format!("unrecognized descriptor: {s}")),
            s => s,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        let parts: Vec<&str> = match parts.len() {
            5 => std::iter::once("0").chain(parts).collect(),
            6 => parts,
            n => return Err(format!("expected 5 to 6 fields, found {n}: [{}]", expanded)),
        };
        let (second, _) = field(parts[0], 0, 59, &[], 0)?;
        let (minute, _) = field(parts[1], 0, 59, &[], 0)?;
        let (hour, _) = field(parts[2], 0, 23, &[], 0)?;
        let (dom, dom_star) = field(parts[3], 1, 31, &[], 0)?;
        let (month, _) = field(parts[4], 1, 12, &MONTHS, 1)?;
        let (mut dow, dow_star) = field(parts[5], 0, 7, &DAYS, 0)?;
        if dow & (1 << 7) != 0 {
            dow |= 1;
        }
        Ok(Schedule::Fields(Fields {
            second,
            minute,
            hour,
            dom,
            month,
            dow,
            dom_star,
            dow_star,
        }))
    }

    /// The first firing strictly after `after`.
    pub fn next(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Schedule::Every(d) => Some(after + *d),
            Schedule::Fields(f) => f.next(after),
        }
    }
}

impl Fields {
    fn day_matches(&self, t: OffsetDateTime) -> bool {
        let dom = self.dom & (1 << t.day()) != 0;
        let dow = self.dow & (1 << t.weekday().number_days_from_sunday()) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    fn next(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let mut t = after.replace_nanosecond(0).ok()? + time::Duration::seconds(1);
        let limit = t + time::Duration::days(5 * 366);
        while t < limit {
            if self.month & (1 << u8::from(t.month())) == 0 {
                let (y, m) = if u8::from(t.month()) == 12 {
                    (t.year() + 1, time::Month::January)
                } else {
                    (t.year(), t.month().next())
                };
                t = t
                    .replace_day(1)
                    .ok()?
                    .replace_month(m)
                    .ok()?
                    .replace_year(y)
                    .ok()?
                    .replace_time(time::Time::MIDNIGHT);
                continue;
            }
            if !self.day_matches(t) {
                t = t.replace_time(time::Time::MIDNIGHT) + time::Duration::days(1);
                continue;
            }
            if self.hour & (1 << t.hour()) == 0 {
                t = t.replace_minute(0).ok()?.replace_second(0).ok()? + time::Duration::hours(1);
                continue;
            }
            if self.minute & (1 << t.minute()) == 0 {
                t = t.replace_second(0).ok()? + time::Duration::minutes(1);
                continue;
            }
            if self.second & (1 << t.second()) == 0 {
                t += time::Duration::seconds(1);
                continue;
            }
            return Some(t);
        }
        None
    }
}

pub struct Cron {
    name: String,
    schedule: Schedule,
}

impl Cron {
    pub fn new(name: &str, props: &Properties) -> Result<Self, ComponentError> {
        let spec = props
            .get("schedule")
            .ok_or_else(|| ComponentError::Metadata("schedule not set".into()))?;
        let schedule = Schedule::parse(spec).map_err(|e| {
            ComponentError::Metadata(format!("invalid schedule format '{spec}': {e}"))
        })?;
        Ok(Self {
            name: name.to_string(),
            schedule,
        })
    }
}

/// Go's `time.Time.String()` for a UTC instant, which Dapr sends as `readTimeUTC`.
fn go_utc_string(t: OffsetDateTime) -> String {
    let frac = t.nanosecond();
    let frac = if frac == 0 {
        String::new()
    } else {
        format!(".{frac:09}").trim_end_matches('0').to_string()
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{frac} +0000 UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

struct Ticking {
    stop: watch::Sender<bool>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

#[async_trait]
impl Reading for Ticking {
    async fn stop(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

#[async_trait]
impl Component for Cron {}

#[async_trait]
impl Binding for Cron {
    fn is_input(&self) -> bool {
        true
    }

    async fn read(&self, handler: ReadHandler) -> Result<Box<dyn Reading>, BindingError> {
        let (stop, mut stopped) = watch::channel(false);
        let schedule = self.schedule.clone();
        let name = self.name.clone();
        let handler = Arc::clone(&handler);
        let task = tokio::spawn(async move {
            let mut last = OffsetDateTime::now_utc();
            loop {
                let Some(next) = schedule.next(last) else {
                    tracing::warn!("cron binding {name}: the schedule never fires again");
                    return;
                };
                let wait = (next - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
                let wait = Duration::try_from(wait).unwrap_or_default();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopped.changed() => return,
                }
                last = next;
                let event = ReadEvent {
                    data: Default::default(),
                    metadata: HashMap::from([
                        ("timeZone".to_string(), "Local".to_string()),
                        (
                            "readTimeUTC".to_string(),
                            go_utc_string(OffsetDateTime::now_utc()),
                        ),
                    ]),
                };
                // As Dapr's, the app's answer does not change the schedule.
                if let Err(e) = handler(event).await {
                    tracing::debug!("cron binding {name}: {e}");
                }
            }
        });
        Ok(Box::new(Ticking {
            stop,
            task: std::sync::Mutex::new(Some(task)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn next(spec: &str, after: OffsetDateTime) -> OffsetDateTime {
        Schedule::parse(spec).unwrap().next(after).unwrap()
    }

    #[test]
    fn five_and_six_fields_and_descriptors() {
        let t = datetime!(2026-12-03 20:55:10 UTC);
        assert_eq!(next("*/5 * * * *", t), datetime!(2026-12-03 21:00:00 UTC));
        assert_eq!(
            next("*/15 * * * * *", t),
            datetime!(2026-12-03 20:55:15 UTC)
        );
        assert_eq!(next("@hourly", t), datetime!(2026-12-03 21:00:00 UTC));
        assert_eq!(next("@daily", t), datetime!(2026-12-04 00:00:00 UTC));
        assert_eq!(next("@monthly", t), datetime!(2027-01-01 00:00:00 UTC));
        assert_eq!(next("@yearly", t), datetime!(2027-01-01 00:00:00 UTC));
        assert_eq!(
            next("@weekly", t),
            datetime!(2026-12-06 00:00:00 UTC),
            "a Sunday"
        );
        assert_eq!(next("@every 15s", t), datetime!(2026-12-03 20:55:25 UTC));
        assert_eq!(
            next("0 30 9 * * MON-FRI", t),
            datetime!(2026-12-04 09:30:00 UTC)
        );
        assert_eq!(next("0 0 1 JAN ?", t), datetime!(2027-01-01 00:00:00 UTC));
        assert_eq!(
            next("0 12 * * 7", t),
            datetime!(2026-12-06 12:00:00 UTC),
            "7 is Sunday"
        );
    }

    #[test]
    fn day_of_month_and_weekday_are_either_when_both_set() {
        let t = datetime!(2026-12-03 20:55:10 UTC);
        // The 13th, or any Friday: Friday the 4th comes first.
        assert_eq!(
            next("0 0 0 13 * FRI", t),
            datetime!(2026-12-04 00:00:00 UTC)
        );
    }

    #[test]
    fn bad_schedules_are_refused() {
        for bad in [
            "",
            "* * *",
            "61 * * * *",
            "*/0 * * * *",
            "@sometimes",
            "@every soon",
            "a b c d e",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Cron::new("c", &Properties::new([("schedule", "bad")])).is_err());
        assert!(Cron::new("c", &Properties::new([("x", "y")])).is_err());
    }

    #[test]
    fn read_time_is_printed_as_go_prints_it() {
        assert_eq!(
            go_utc_string(datetime!(2026-12-03 20:55:10.5 UTC)),
            "2026-12-03 20:55:10.5 +0000 UTC"
        );
    }

    #[tokio::test]
    async fn fires_until_stopped() {
        let cron = Cron::new("c", &Properties::new([("schedule", "@every 1s")])).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let handler: ReadHandler = Arc::new(move |e: ReadEvent| {
            let _ = tx.send(e);
            Box::pin(async { Ok(Default::default()) })
        });
        let reading = cron.read(handler).await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(3), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.metadata["timeZone"], "Local");
        assert!(first.metadata["readTimeUTC"].ends_with("+0000 UTC"));
        reading.stop().await;
        while rx.try_recv().is_ok() {}
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(rx.try_recv().is_err(), "nothing after stop");
    }
}
