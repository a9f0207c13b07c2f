//! `spec.tracing` as the tracer takes it, merged with the `OTEL_*` environment the way
//! Dapr merges them: the environment fills in an OTLP endpoint the Configuration leaves
//! empty (and then samples everything unless a rate is given), adds headers and a
//! timeout, and names the exported resource.

use std::collections::BTreeMap;
use std::time::Duration;

use crds::configuration::{Configuration, TracingSpec};

use crate::config::Env;

/// The tracer's settings for this sidecar. An invalid OTLP protocol is Dapr's startup
/// error; a header or number that cannot be read is skipped with a warning.
pub fn trace_settings(
    config: &Configuration,
    env: &Env,
    app_id: &str,
) -> Result<trace::Settings, trace::TraceError> {
    let spec = config.spec.tracing.clone().unwrap_or_default();
    let otel_env = &env.otel;
    let var = |name: &str| otel_env.get(name).map(String::as_str);
    let first = |a: &str, b: &str| var(a).or_else(|| var(b));

    let mut sampling_rate = spec.sampling_rate.clone();
    let mut otel = spec.otel.clone().unwrap_or_default();
    if otel.endpoint_address.is_empty()
        && let Some(endpoint) = first(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        )
    {
        otel.endpoint_address = endpoint
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_string();
        if sampling_rate.is_empty() {
            sampling_rate = "1".into();
        }
        let protocol = first(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        )
        .unwrap_or_default();
        // OTLP's `http/protobuf` and `http/json` are Dapr's `http`.
        otel.protocol = if protocol.starts_with("http") {
            "http"
        } else {
            "grpc"
        }
        .into();
        if var("OTEL_EXPORTER_OTLP_INSECURE") == Some("true") {
            otel.is_secure = Some(false);
        }
    }
    let mut headers: Vec<(String, String)> = otel
        .headers
        .iter()
        .map(|h| (h.name.clone(), h.value_string().unwrap_or_default()))
        .collect();
    if let Some(list) = first(
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_HEADERS",
    ) {
        headers.extend(key_values(list));
    }
    let timeout = match otel.timeout.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => match kit::duration::go(t) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!("spec.tracing.otel.timeout {t:?}: {e}; using the default");
                None
            }
        },
        None => first(
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        )
        .and_then(|ms| ms.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis),
    };
    let otel = if !otel.endpoint_address.is_empty() && !otel.protocol.is_empty() {
        Some(trace::Otel {
            protocol: otel.protocol.parse()?,
            endpoint: otel.endpoint_address,
            secure: otel.is_secure.unwrap_or(true),
            headers,
            timeout,
        })
    } else {
        None
    };
    Ok(trace::Settings {
        resource: resource(app_id, otel_env),
        sampling_rate: trace::parse_rate(&sampling_rate),
        stdout: spec.stdout.unwrap_or(false),
        zipkin: zipkin(&spec),
        otel,
        batching: batching(otel_env),
    })
}

fn zipkin(spec: &TracingSpec) -> Option<String> {
    spec.zipkin
        .as_ref()
        .map(|z| z.endpoint_address.clone())
        .filter(|e| !e.is_empty())
}

/// `k=v,k2=v2`, OpenTelemetry's list form for headers and resource attributes (values
/// may be percent-encoded).
fn key_values(list: &str) -> Vec<(String, String)> {
    list.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| {
                (
                    k.to_string(),
                    kit::percent::decode_lossy(v.trim()).into_owned(),
                )
            })
        })
        .collect()
}

/// `service.name` is the app id, unless `OTEL_RESOURCE_ATTRIBUTES` or, above it,
/// `OTEL_SERVICE_NAME` says otherwise.
fn resource(app_id: &str, otel_env: &BTreeMap<&'static str, String>) -> trace::Resource {
    let mut service_name = app_id.to_string();
    let mut attributes = Vec::new();
    if let Some(list) = otel_env.get("OTEL_RESOURCE_ATTRIBUTES") {
        for (k, v) in key_values(list) {
            if k == "service.name" {
                service_name = v;
            } else {
                attributes.push((k, v));
            }
        }
    }
    if let Some(name) = otel_env.get("OTEL_SERVICE_NAME") {
        service_name = name.clone();
    }
    trace::Resource {
        service_name,
        attributes,
    }
}

fn batching(otel_env: &BTreeMap<&'static str, String>) -> trace::Batching {
    let number = |name: &str| otel_env.get(name).and_then(|v| v.parse::<u64>().ok());
    let mut b = trace::Batching::default();
    if let Some(ms) = number("OTEL_BSP_SCHEDULE_DELAY") {
        b.schedule_delay = Duration::from_millis(ms);
    }
    if let Some(ms) = number("OTEL_BSP_EXPORT_TIMEOUT").filter(|ms| *ms > 0) {
        b.export_timeout = Duration::from_millis(ms);
    }
    if let Some(n) = number("OTEL_BSP_MAX_QUEUE_SIZE").filter(|n| *n > 0) {
        b.max_queue = usize::try_from(n).unwrap_or(b.max_queue);
    }
    if let Some(n) = number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE").filter(|n| *n > 0) {
        b.max_batch = usize::try_from(n).unwrap_or(b.max_batch);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Configuration {
        let doc: serde_json::Value = serde_saphyr::from_str(yaml).expect("yaml");
        crds::document::decode(doc).expect("decodes")
    }

    fn env(vars: &[(&str, &str)]) -> Env {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_configuration_names_the_exporters() {
        let cfg = config(
            "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata: {name: t}\nspec:\n  tracing:\n    samplingRate: \"0.5\"\n    stdout: true\n    zipkin: {endpointAddress: \"http://127.0.0.1:9411/api/v2/spans\"}\n    otel:\n      protocol: http\n      endpointAddress: \"127.0.0.1:4318\"\n      isSecure: false\n      timeout: 2s\n      headers:\n      - {name: api-key, value: secret}\n",
        );
        let s = trace_settings(&cfg, &Env::default(), "app").expect("settings");
        assert_eq!(s.sampling_rate, 0.5);
        assert!(s.stdout);
        assert_eq!(
            s.zipkin.as_deref(),
            Some("http://127.0.0.1:9411/api/v2/spans")
        );
        assert_eq!(
            s.otel,
            Some(trace::Otel {
                protocol: trace::OtelProtocol::Http,
                endpoint: "127.0.0.1:4318".into(),
                secure: false,
                headers: vec![("api-key".into(), "secret".into())],
                timeout: Some(Duration::from_secs(2)),
            })
        );
        assert_eq!(s.resource.service_name, "app");
    }

    #[test]
    fn no_tracing_section_is_dapr_default_rate_and_no_exporter() {
        let s =
            trace_settings(&Configuration::default(), &Env::default(), "app").expect("settings");
        assert_eq!(s.sampling_rate, trace::sampler::DEFAULT_RATE);
        assert_eq!((s.stdout, s.zipkin, s.otel), (false, None, None));
    }

    #[test]
    fn the_environment_fills_in_an_otlp_endpoint() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=x%20y"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1500"),
            ("OTEL_SERVICE_NAME", "renamed"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=ignored,team=core"),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ]);
        let s = trace_settings(&Configuration::default(), &e, "app").expect("settings");
        assert_eq!(
            s.sampling_rate, 1.0,
            "an endpoint from the environment samples all"
        );
        let otel = s.otel.expect("otel");
        assert_eq!(otel.protocol, trace::OtelProtocol::Http);
        assert_eq!(otel.endpoint, "collector:4318");
        assert!(!otel.secure);
        assert_eq!(
            otel.headers,
            vec![("a".into(), "1".into()), ("b".into(), "x y".into())]
        );
        assert_eq!(otel.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(s.resource.service_name, "renamed");
        assert_eq!(s.resource.attributes, vec![("team".into(), "core".into())]);
        assert_eq!(s.batching.schedule_delay, Duration::from_millis(200));

        // Without OTEL_EXPORTER_OTLP_INSECURE the connection is TLS, and grpc is the default.
        let e = env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4317")]);
        let otel = trace_settings(&Configuration::default(), &e, "app")
            .expect("settings")
            .otel
            .expect("otel");
        assert_eq!(
            (otel.protocol, otel.secure),
            (trace::OtelProtocol::Grpc, true)
        );
    }

    #[test]
    fn the_configurations_endpoint_wins_over_the_environment() {
        let cfg = config(
            "kind: Configuration\nspec:\n  tracing:\n    samplingRate: \"0\"\n    otel: {protocol: grpc, endpointAddress: \"a:4317\", isSecure: false}\n",
        );
        let e = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "b:4317")]);
        let s = trace_settings(&cfg, &e, "app").expect("settings");
        assert_eq!(s.sampling_rate, 0.0);
        assert_eq!(s.otel.expect("otel").endpoint, "a:4317");
    }

    #[test]
    fn an_unknown_protocol_is_dapr_startup_error() {
        let cfg = config(
            "kind: Configuration\nspec:\n  tracing:\n    otel: {protocol: thrift, endpointAddress: \"a:1\"}\n",
        );
        let err = trace_settings(&cfg, &Env::default(), "app").expect_err("refused");
        assert_eq!(
            err.to_string(),
            "invalid protocol thrift provided for Otel endpoint"
        );
    }
}
