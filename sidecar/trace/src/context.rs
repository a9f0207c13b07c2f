//! The W3C trace context a span is known by on the wire: `traceparent` and `tracestate`
//! headers (HTTP and gRPC metadata alike) and the binary `grpc-trace-bin` form Dapr's
//! sidecars exchange. Parsing follows Dapr's rules, so a header Dapr would drop is dropped
//! here too and the request starts a new trace.

use std::sync::Arc;

/// The `traceparent` header (and gRPC metadata key).
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header.
pub const TRACESTATE: &str = "tracestate";
/// The binary trace context gRPC calls between Dapr sidecars carry.
pub const GRPC_TRACE_BIN: &str = "grpc-trace-bin";

/// The newest `traceparent` version a sender may use; `ff` is forbidden.
const MAX_VERSION: u8 = 254;
/// A `tracestate` longer than this is not passed on.
const MAX_TRACESTATE_LEN: usize = 512;
/// W3C allows at most this many `tracestate` members.
const MAX_TRACESTATE_MEMBERS: usize = 32;
/// The `sampled` bit of the trace flags.
const SAMPLED: u8 = 0x01;

/// Identifies a span: its trace, itself, whether it is sampled, and vendor state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
    /// The validated `tracestate`, shared by every span of the trace that passes it on.
    pub trace_state: Option<Arc<str>>,
}

impl SpanContext {
    /// Both ids set: a context worth continuing.
    pub fn is_valid(&self) -> bool {
        self.trace_id != [0; 16] && self.span_id != [0; 8]
    }

    /// Whether the trace is sampled, i.e. its spans are exported.
    pub fn is_sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    /// Reads a `traceparent` header as Dapr does: `version-traceid-spanid-flags`, two hex
    /// digits of version below `ff` (version `00` with exactly four fields, later versions
    /// with at least four), lowercase ids that are not all zero, and flags whose first byte
    /// counts. Anything else is no context.
    pub fn from_traceparent(header: &str) -> Option<Self> {
        let mut fields = header.split('-');
        let version = fields.next()?;
        let trace_id = fields.next()?;
        let span_id = fields.next()?;
        let flags = fields.next()?;
        let extra = fields.next().is_some();
        if version.len() != 2 {
            return None;
        }
        let version = hex_byte(version.as_bytes())?;
        if version > MAX_VERSION || (version == 0 && extra) {
            return None;
        }
        let trace_id: [u8; 16] = lower_hex(trace_id)?;
        let span_id: [u8; 8] = lower_hex(span_id)?;
        // Go's hex decoding wants whole bytes; the first byte is the flags.
        let flag_bytes = flags.as_bytes();
        if flag_bytes.is_empty() || flag_bytes.len() % 2 != 0 {
            return None;
        }
        let flags = hex_byte(&flag_bytes[..2])?;
        if flag_bytes[2..].chunks(2).any(|b| hex_byte(b).is_none()) {
            return None;
        }
        let ctx = Self {
            trace_id,
            span_id,
            flags,
            trace_state: None,
        };
        ctx.is_valid().then_some(ctx)
    }

    /// The context with a `tracestate` header attached; one that is not well formed is
    /// dropped, as Dapr drops it, and the context is kept.
    pub fn with_trace_state(mut self, header: Option<&str>) -> Self {
        self.trace_state = header.and_then(valid_trace_state).map(Arc::from);
        self
    }

    /// The `traceparent` header for this context (always version `00`).
    pub fn traceparent(&self) -> String {
        let mut out = String::with_capacity(55);
        out.push_str("00-");
        push_hex(&mut out, &self.trace_id);
        out.push('-');
        push_hex(&mut out, &self.span_id);
        out.push('-');
        push_hex(&mut out, &[self.flags]);
        out
    }

    /// The `tracestate` header to send along, if any; over-long state stays behind.
    pub fn tracestate(&self) -> Option<&str> {
        self.trace_state
            .as_deref()
            .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE_LEN)
    }

    /// OpenCensus' binary format, as Dapr puts it in `grpc-trace-bin`: version 0, then
    /// field 0 (trace id), field 1 (span id), field 2 (flags).
    pub fn to_binary(&self) -> [u8; 29] {
        let mut b = [0u8; 29];
        b[2..18].copy_from_slice(&self.trace_id);
        b[18] = 1;
        b[19..27].copy_from_slice(&self.span_id);
        b[27] = 2;
        b[28] = self.flags;
        b
    }

    /// Reads `grpc-trace-bin`. As in Dapr, the trace id is required and the span id and
    /// flags are optional; a context without a span id is not continued.
    pub fn from_binary(b: &[u8]) -> Option<Self> {
        let (&version, mut rest) = b.split_first()?;
        if version != 0 {
            return None;
        }
        let mut ctx = Self::default();
        if rest.len() >= 17 && rest[0] == 0 {
            ctx.trace_id.copy_from_slice(&rest[1..17]);
            rest = &rest[17..];
        } else {
            return None;
        }
        if rest.len() >= 9 && rest[0] == 1 {
            ctx.span_id.copy_from_slice(&rest[1..9]);
            rest = &rest[9..];
        }
        if rest.len() >= 2 && rest[0] == 2 {
            ctx.flags = rest[1];
        }
        ctx.is_valid().then_some(ctx)
    }

    /// The trace id as 32 lowercase hex digits, the form trace backends show and query.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The span id as 16 lowercase hex digits.
    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }
}

/// Lowercase hex of any bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    match two {
        [hi, lo] => Some(nibble(*hi)? << 4 | nibble(*lo)?),
        _ => None,
    }
}

/// Ids must be lowercase hex of exactly their length (OpenTelemetry's rule).
fn lower_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != N * 2 || s.iter().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.chunks(2).enumerate() {
        out[i] = hex_byte(pair)?;
    }
    Some(out)
}

/// A `tracestate` in W3C's list form: `key=value` members separated by commas, keys of
/// lowercase letters, digits and `_-*/` (optionally `tenant@system`), values of printable
/// ASCII without `,` and `=`. Returns the members rejoined without the optional spaces.
fn valid_trace_state(header: &str) -> Option<String> {
    let mut members = Vec::new();
    for member in header.split(',') {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=')?;
        if !valid_key(key) || !valid_value(value) {
            return None;
        }
        members.push(member);
    }
    if members.len() > MAX_TRACESTATE_MEMBERS {
        return None;
    }
    Some(members.join(","))
}

fn valid_key(key: &str) -> bool {
    let simple = |k: &str, max: usize| {
        let b = k.as_bytes();
        !b.is_empty()
            && b.len() <= max
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-*/".contains(c))
    };
    match key.split_once('@') {
        Some((tenant, system)) => simple(tenant, 241) && simple(system, 14),
        None => simple(key, 256),
    }
}

fn valid_value(value: &str) -> bool {
    let b = value.as_bytes();
    !b.is_empty()
        && b.len() <= 256
        && b.last() != Some(&b' ')
        && b.iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_traceparent_round_trips() {
        let ctx = SpanContext::from_traceparent(TP).expect("valid");
        assert_eq!(ctx.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.span_id_hex(), "00f067aa0ba902b7");
        assert!(ctx.is_sampled());
        assert_eq!(ctx.traceparent(), TP);
    }

    #[test]
    fn traceparents_dapr_refuses_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(SpanContext::from_traceparent(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn later_versions_may_carry_more_fields() {
        let ctx = SpanContext::from_traceparent(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-future",
        )
        .expect("version 01 with an extra field");
        assert!(!ctx.is_sampled());
        assert_eq!(
            ctx.traceparent(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
        );
    }

    #[test]
    fn the_binary_form_round_trips_and_needs_a_trace_id() {
        let ctx = SpanContext::from_traceparent(TP).expect("valid");
        let bin = ctx.to_binary();
        assert_eq!(bin[0], 0);
        assert_eq!(SpanContext::from_binary(&bin), Some(ctx.clone()));
        assert_eq!(SpanContext::from_binary(&bin[..10]), None);
        let mut other_version = bin;
        other_version[0] = 1;
        assert_eq!(SpanContext::from_binary(&other_version), None);
        // Without the span id field there is nothing to continue.
        assert_eq!(SpanContext::from_binary(&bin[..18]), None);
        assert_eq!(SpanContext::from_binary(&[]), None);
    }

    #[test]
    fn tracestate_is_kept_when_well_formed() {
        let ctx = SpanContext::from_traceparent(TP).expect("valid");
        let kept = ctx
            .clone()
            .with_trace_state(Some("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7"));
        assert_eq!(
            kept.tracestate(),
            Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
        );
        let tenant = ctx.clone().with_trace_state(Some("acme@vendor=1"));
        assert_eq!(tenant.tracestate(), Some("acme@vendor=1"));
        for bad in ["Upper=1", "novalue", "a=b=c", "=x", "a=x ,b", "a=\u{7f}"] {
            assert_eq!(
                ctx.clone().with_trace_state(Some(bad)).tracestate(),
                None,
                "{bad:?}"
            );
        }
        let many = (0..33).map(|i| format!("k{i}=v")).collect::<Vec<_>>();
        assert_eq!(
            ctx.with_trace_state(Some(&many.join(","))).tracestate(),
            None
        );
    }
}
