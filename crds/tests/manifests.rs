//! Manifests written the way Dapr's documentation writes them must load into the types and
//! serialise back without losing or inventing anything, so a standalone sidecar reading YAML
//! and an operator relaying objects both see exactly what the user wrote.

use crds::configuration::{Configuration, MtlsSpec};
use crds::subscription::{v1alpha1, v2alpha1};
use crds::{Component, HTTPEndpoint, Renegotiation, Resiliency};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Parses `yaml` into `T` and checks that `T` serialises to the same JSON the YAML denotes.
fn round_trip<T: DeserializeOwned + Serialize>(yaml: &str) -> T {
    let typed: T = serde_saphyr::from_str(yaml).expect("manifest parses into the typed resource");
    let written: Value = serde_saphyr::from_str(yaml).expect("manifest parses as plain data");
    let back = serde_json::to_value(&typed).expect("typed resource serialises");
    assert_eq!(
        back,
        written,
        "round trip changed the manifest\nwritten: {}\nback:    {}",
        serde_json::to_string_pretty(&written).unwrap_or_default(),
        serde_json::to_string_pretty(&back).unwrap_or_default()
    );
    typed
}

const REDIS_COMPONENT: &str = r#"
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
  namespace: production
spec:
  type: state.redis
  version: v1
  initTimeout: 10s
  ignoreErrors: true
  metadata:
  - name: redisHost
    value: redis-master.default.svc.cluster.local:6379
  - name: redisPassword
    secretKeyRef:
      name: redis-secret
      key: redis-password
  - name: actorStateStore
    value: true
  - name: maxRetries
    value: 5
  - name: ttlInSeconds
    value: 0.5
  - name: tlsConfig
    value:
      enabled: true
      servers: [a, b]
  - name: region
    envRef: AWS_REGION
auth:
  secretStore: kubernetes
scopes:
- checkout
- orders
"#;

#[test]
fn redis_component_round_trips() {
    let c: Component = round_trip(REDIS_COMPONENT);
    assert_eq!(c.metadata.name.as_deref(), Some("statestore"));
    assert_eq!(c.spec.spec.type_, "state.redis");
    assert_eq!(c.spec.spec.version, "v1");
    assert_eq!(c.spec.spec.init_timeout, "10s");
    assert!(c.spec.spec.ignore_errors);
    assert_eq!(c.spec.auth.secret_store, "kubernetes");
    assert_eq!(c.spec.scopes, ["checkout", "orders"]);
    assert!(c.is_app_scoped("orders"));
    assert!(!c.is_app_scoped("billing"));

    let md = c.name_value_pairs();
    assert_eq!(
        md[0].value_string().as_deref(),
        Some("redis-master.default.svc.cluster.local:6379")
    );
    assert!(md[1].has_secret_key_ref());
    assert_eq!(md[1].secret_key_ref.name, "redis-secret");
    assert_eq!(md[1].secret_key_ref.key, "redis-password");
    assert_eq!(md[1].value, None);
    assert_eq!(md[2].value, Some(json!(true)));
    assert_eq!(md[2].value_string().as_deref(), Some("true"));
    assert_eq!(md[3].value, Some(json!(5)));
    assert_eq!(md[3].value_string().as_deref(), Some("5"));
    assert_eq!(md[4].value_string().as_deref(), Some("0.5"));
    assert_eq!(
        md[5].value,
        Some(json!({"enabled": true, "servers": ["a", "b"]}))
    );
    assert_eq!(md[6].env_ref, "AWS_REGION");
}

#[test]
fn component_serialises_with_auth_and_scopes_at_the_root() {
    let c: Component = serde_saphyr::from_str(REDIS_COMPONENT).expect("manifest parses");
    let v = serde_json::to_value(&c).expect("serialises");
    assert_eq!(v["apiVersion"], "dapr.io/v1alpha1");
    assert_eq!(v["kind"], "Component");
    assert_eq!(v["auth"]["secretStore"], "kubernetes");
    assert_eq!(v["scopes"], json!(["checkout", "orders"]));
    assert!(v["spec"].get("auth").is_none() && v["spec"].get("scopes").is_none());
}

#[test]
fn unknown_fields_and_minimal_components_load() {
    let yaml = r#"
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.in-memory
  version: v1
  somethingNewer: {x: 1}
  metadata:
  - name: a
    value: "1"
    futureField: true
status:
  whatever: true
extraRootField: 3
"#;
    let c: Component = serde_saphyr::from_str(yaml).expect("unknown fields are ignored");
    assert_eq!(c.spec.spec.type_, "pubsub.in-memory");
    assert_eq!(c.spec.spec.metadata[0].value_string().as_deref(), Some("1"));
    assert!(c.spec.scopes.is_empty());
    assert_eq!(c.spec.auth.secret_store, "");

    // Go's decoder fills missing fields with zero values; so do we.
    let bare: Component = serde_saphyr::from_str(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: x\n",
    )
    .expect("a component without spec still parses");
    assert_eq!(bare.spec.spec.type_, "");
    assert!(bare.spec.spec.metadata.is_empty());
}

const CONFIGURATION: &str = r#"
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: appconfig
  namespace: default
spec:
  tracing:
    samplingRate: "1"
    stdout: true
    zipkin:
      endpointAddress: http://zipkin.default.svc.cluster.local:9411/api/v2/spans
    otel:
      endpointAddress: otel-collector:4317
      isSecure: false
      protocol: grpc
      headers:
      - name: api-key
        secretKeyRef:
          name: otel-secret
          key: key
      timeout: 10s
  metrics:
    enabled: true
    recordErrorCodes: true
    latencyDistributionBuckets: [1, 5, 10, 100]
    http:
      increasedCardinality: false
      pathMatching: ["/orders/{id}"]
      excludeVerbs: true
    rules:
    - name: dapr_runtime_service_invocation_req_sent_total
      labels:
      - name: method
        regex:
          "orders/": "orders/.+"
  mtls:
    enabled: true
    workloadCertTTL: 24h
    allowedClockSkew: 15m
    sentryAddress: dapr-sentry.dapr-system.svc.cluster.local:443
    controlPlaneTrustDomain: cluster.local
    tokenValidators:
    - name: jwks
      options:
        source: https://example.com/jwks.json
        audiences: [dapr]
  accessControl:
    defaultAction: deny
    trustDomain: public
    policies:
    - appId: app1
      defaultAction: allow
      trustDomain: public
      namespace: default
      operations:
      - name: /op1
        httpVerb: [POST, GET]
        action: deny
      - name: /op2/*
        httpVerb: ["*"]
        action: allow
  features:
  - name: SchedulerReminders
    enabled: true
  - name: Resiliency
    enabled: false
  nameResolution:
    component: consul
    version: v1
    configuration:
      selfRegister: true
      client:
        address: 127.0.0.1:8500
      tags: [dapr, v1]
  httpPipeline:
    handlers:
    - name: oauth2
      type: middleware.http.oauth2
      selector:
        fields:
        - field: path
          value: /secure
  appHttpPipeline:
    handlers:
    - name: uppercase
      type: middleware.http.uppercase
  secrets:
    scopes:
    - storeName: kubernetes
      defaultAccess: deny
      allowedSecrets: [redis-password]
      deniedSecrets: [admin]
  api:
    allowed:
    - name: state
      version: v1.0
      protocol: http
    denied:
    - name: invoke
      version: v1.0
  components:
    deny: [bindings.smtp, secretstores.local.file/v1]
  logging:
    apiLogging:
      enabled: true
      obfuscateURLs: true
      omitHealthChecks: true
  wasm:
    strictSandbox: true
  workflow:
    maxConcurrentWorkflowInvocations: 100
    maxConcurrentActivityInvocations: 50
    globalMaxConcurrentWorkflowInvocations: 1000
    workflowConcurrencyLimits:
    - name: OrderWorkflow
      maxConcurrent: 10
    stateRetentionPolicy:
      anyTerminal: 72h
      failed: 0s
"#;

#[test]
fn configuration_round_trips() {
    let c: Configuration = round_trip(CONFIGURATION);
    let tracing = c.spec.tracing.as_ref().expect("tracing");
    assert_eq!(tracing.sampling_rate, "1");
    assert_eq!(
        tracing.otel.as_ref().map(|o| o.is_secure),
        Some(Some(false))
    );
    let mtls = c.spec.mtls.as_ref().expect("mtls");
    assert_eq!(mtls.workload_cert_ttl.as_deref(), Some("24h"));
    assert_eq!(mtls.control_plane_trust_domain, "cluster.local");
    assert!(MtlsSpec::is_enabled(Some(mtls)));
    assert!(MtlsSpec::is_enabled(None));
    let acl = c.spec.access_control.as_ref().expect("accessControl");
    assert_eq!(acl.policies[0].app_id, "app1");
    assert_eq!(acl.policies[0].operations[0].http_verb, ["POST", "GET"]);
    assert_eq!(c.spec.features[1].enabled, Some(false));
    let nr = c.spec.name_resolution.as_ref().expect("nameResolution");
    assert_eq!(
        nr.configuration
            .as_ref()
            .and_then(|v| v.pointer("/client/address")),
        Some(&json!("127.0.0.1:8500"))
    );
    let logging = c.spec.logging.as_ref().and_then(|l| l.api_logging.as_ref());
    assert_eq!(logging.and_then(|l| l.obfuscate_urls), Some(true));
    assert_eq!(
        c.spec
            .workflow
            .as_ref()
            .and_then(|w| w.state_retention_policy.as_ref())
            .and_then(|p| p.failed.as_deref()),
        Some("0s")
    );
}

#[test]
fn standalone_configuration_with_partial_mtls_loads() {
    // Dapr's self-hosted docs omit fields the CRD requires; the file loader must still accept it.
    let c: Configuration = serde_saphyr::from_str(
        r#"
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: daprConfig
spec:
  mtls:
    enabled: false
  metric:
    enabled: false
"#,
    )
    .expect("partial configuration parses");
    assert!(!MtlsSpec::is_enabled(c.spec.mtls.as_ref()));
    assert_eq!(c.spec.metric.as_ref().and_then(|m| m.enabled), Some(false));
}

#[test]
fn subscription_v1alpha1_round_trips() {
    let s: v1alpha1::Subscription = round_trip(
        r#"
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata:
  name: order-pub-sub
spec:
  topic: orders
  route: /checkout
  pubsubname: order-pub-sub
  deadLetterTopic: poisonMessages
  metadata:
    rawPayload: "true"
  bulkSubscribe:
    enabled: true
    maxMessagesCount: 100
    maxAwaitDurationMs: 40
scopes:
- orderprocessing
"#,
    );
    assert_eq!(s.spec.spec.route, "/checkout");
    assert_eq!(s.spec.spec.pubsubname, "order-pub-sub");
    assert_eq!(
        s.spec.spec.metadata.get("rawPayload").map(String::as_str),
        Some("true")
    );
    assert_eq!(s.spec.spec.bulk_subscribe.max_messages_count, 100);
    assert_eq!(s.spec.scopes, ["orderprocessing"]);
}

#[test]
fn subscription_v2alpha1_round_trips() {
    let s: v2alpha1::Subscription = round_trip(
        r#"
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: myevent-subscription
spec:
  pubsubname: pubsub
  topic: inventory
  routes:
    rules:
    - match: event.type == "widget"
      path: /widgets
    - match: event.type == "gadget"
      path: /gadgets
    default: /products
  metadata:
    maxConcurrency: "4"
  deadLetterTopic: dead
  bulkSubscribe:
    enabled: true
    maxMessagesCount: 10
scopes:
- app1
- app2
"#,
    );
    assert_eq!(
        s.spec.spec.routes.rules[0].match_,
        r#"event.type == "widget""#
    );
    assert_eq!(s.spec.spec.routes.rules[1].path, "/gadgets");
    assert_eq!(s.spec.spec.routes.default, "/products");
    assert!(s.spec.spec.bulk_subscribe.enabled);
    assert_eq!(s.spec.scopes, ["app1", "app2"]);
}

#[test]
fn resiliency_round_trips() {
    let r: Resiliency = round_trip(
        r#"
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: myresiliency
scopes:
- app1
spec:
  policies:
    timeouts:
      general: 5s
      important: 60s
      largeResponse: 10s
    retries:
      pubsubRetry:
        policy: constant
        duration: 5s
        maxRetries: 10
      retryForever:
        policy: exponential
        maxInterval: 15s
        maxRetries: -1
      important:
        policy: constant
        duration: 5s
        maxRetries: 30
        matching:
          httpStatusCodes: 429,500-599
          gRPCStatusCodes: 1-4,8-11,13,14
    circuitBreakers:
      simpleCB:
        maxRequests: 1
        timeout: 30s
        trip: consecutiveFailures >= 5
      pubsubCB:
        maxRequests: 1
        interval: 8s
        timeout: 45s
        trip: consecutiveFailures > 8
  targets:
    apps:
      appB:
        timeout: general
        retry: important
        circuitBreaker: simpleCB
        circuitBreakerCacheSize: 100
    actors:
      myActorType:
        timeout: general
        retry: important
        circuitBreaker: simpleCB
        circuitBreakerScope: both
        circuitBreakerCacheSize: 5000
    components:
      statestore1:
        outbound:
          timeout: general
          retry: retryForever
          circuitBreaker: simpleCB
      pubsub1:
        outbound:
          retry: pubsubRetry
          circuitBreaker: pubsubCB
        inbound:
          timeout: general
          retry: important
          circuitBreaker: pubsubCB
"#,
    );
    let p = &r.spec.spec.policies;
    assert_eq!(p.timeouts.get("general").map(String::as_str), Some("5s"));
    assert_eq!(
        p.retries.get("retryForever").and_then(|r| r.max_retries),
        Some(-1)
    );
    assert_eq!(
        p.retries
            .get("important")
            .and_then(|r| r.matching.as_ref())
            .map(|m| m.grpc_status_codes.as_str()),
        Some("1-4,8-11,13,14")
    );
    assert_eq!(
        p.circuit_breakers
            .get("pubsubCB")
            .map(|c| c.interval.as_str()),
        Some("8s")
    );
    let t = &r.spec.spec.targets;
    assert_eq!(
        t.actors
            .get("myActorType")
            .map(|a| a.circuit_breaker_scope.as_str()),
        Some("both")
    );
    assert_eq!(
        t.components
            .get("pubsub1")
            .map(|c| c.inbound.retry.as_str()),
        Some("important")
    );
    assert_eq!(r.spec.scopes, ["app1"]);
}

#[test]
fn http_endpoint_round_trips() {
    let e: HTTPEndpoint = round_trip(
        r#"
apiVersion: dapr.io/v1alpha1
kind: HTTPEndpoint
metadata:
  name: external-api
spec:
  baseUrl: https://api.example.com:443/v1
  headers:
  - name: Accept-Language
    value: en-US
  - name: Authorization
    secretKeyRef:
      name: my-secret
      key: token
  - name: X-Region
    envRef: REGION
  clientTLS:
    rootCA:
      secretKeyRef:
        name: tls-ca
        key: ca.crt
    certificate:
      value: |
        -----BEGIN CERTIFICATE-----
        MIIB
        -----END CERTIFICATE-----
    privateKey:
      secretKeyRef:
        name: tls-key
        key: tls.key
    renegotiation: OnceAsClient
auth:
  secretStore: vault
scopes:
- frontend
"#,
    );
    let spec = &e.spec.spec;
    assert_eq!(spec.base_url, "https://api.example.com:443/v1");
    assert_eq!(spec.headers[1].secret_key_ref.key, "token");
    let tls = spec.client_tls.as_ref().expect("clientTLS");
    assert_eq!(tls.renegotiation, Some(Renegotiation::OnceAsClient));
    assert_eq!(
        tls.root_ca
            .as_ref()
            .and_then(|d| d.secret_key_ref.as_ref())
            .map(|r| r.name.as_str()),
        Some("tls-ca")
    );
    assert!(
        tls.certificate
            .as_ref()
            .and_then(|d| d.value.as_ref())
            .and_then(Value::as_str)
            .is_some_and(|pem| pem.starts_with("-----BEGIN CERTIFICATE-----"))
    );
    assert_eq!(e.spec.auth.secret_store, "vault");
    assert_eq!(e.spec.scopes, ["frontend"]);
}

#[test]
fn constructed_resources_serialise_in_daprs_shape() {
    // What an operator would build and send: apiVersion/kind filled in, defaults left out.
    let c = Component::new(
        "kv",
        crds::ComponentFields {
            spec: crds::ComponentSpec {
                type_: "state.in-memory".into(),
                version: "v1".into(),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    assert_eq!(
        serde_json::to_value(&c).expect("serialises"),
        json!({
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": "kv"},
            "spec": {"type": "state.in-memory", "version": "v1", "metadata": []},
        })
    );
    let cfg = Configuration::new("c", Default::default());
    assert_eq!(
        serde_json::to_value(&cfg).expect("serialises"),
        json!({
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Configuration",
            "metadata": {"name": "c"},
            "spec": {},
        })
    );
}
