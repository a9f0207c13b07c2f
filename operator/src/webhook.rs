//! The Subscription conversion webhook. The CRD serves `v1alpha1` and `v2alpha1` and
//! stores `v2alpha1`; the API server asks this webhook to convert between them, as Dapr's
//! operator does: `route` becomes `routes.default` one way and back the other.
//!
//! Every replica serves it with the same certificate, kept in the `dapr-webhook-cert`
//! Secret (the first replica to start makes it), and points the installed CRD at itself
//! with that certificate's CA as the bundle.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Json;
use axum::Router;
use axum::routing::post;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

const SECRET_NAME: &str = "dapr-webhook-cert";
const CRD_NAME: &str = "subscriptions.dapr.io";

/// Why a Subscription could not be converted; the API server shows it to whoever asked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConversionError {
    #[error("the object has no spec")]
    NoSpec,
    #[error("cannot convert {from} to {to}")]
    Unsupported { from: String, to: String },
}

/// Converts one Subscription object to `desired` (`dapr.io/v1alpha1` or `dapr.io/v2alpha1`).
pub fn convert(mut object: Value, desired: &str) -> Result<Value, ConversionError> {
    let from = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if from == desired {
        return Ok(object);
    }
    let spec = object
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .ok_or(ConversionError::NoSpec)?;
    match (from.as_str(), desired) {
        ("dapr.io/v1alpha1", "dapr.io/v2alpha1") => {
            let route = spec.remove("route");
            if let Some(route) = route.filter(|r| r.as_str().is_some_and(|s| !s.is_empty())) {
                spec.insert("routes".into(), json!({ "default": route }));
            }
        }
        ("dapr.io/v2alpha1", "dapr.io/v1alpha1") => {
            // v1alpha1 has one route: the default (rules have no place there, as in Dapr).
            let default = spec
                .remove("routes")
                .and_then(|r| r.get("default").cloned())
                .filter(|d| d.as_str().is_some_and(|s| !s.is_empty()));
            if let Some(default) = default {
                spec.insert("route".into(), default);
            }
        }
        _ => {
            return Err(ConversionError::Unsupported {
                from,
                to: desired.to_string(),
            });
        }
    }
    if let Some(o) = object.as_object_mut() {
        o.insert("apiVersion".into(), Value::String(desired.to_string()));
    }
    Ok(object)
}

/// Answers a `ConversionReview`; a malformed review gets a Failure result, never a panic.
pub fn review(body: &Value) -> Value {
    let request = body.get("request").cloned().unwrap_or(Value::Null);
    let uid = request
        .get("uid")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    let desired = request
        .get("desiredAPIVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let objects = request
        .get("objects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let converted: Result<Vec<Value>, ConversionError> =
        objects.into_iter().map(|o| convert(o, desired)).collect();
    let response = match converted {
        Ok(objects) => json!({
            "uid": uid,
            "convertedObjects": objects,
            "result": { "status": "Success" }
        }),
        Err(e) => json!({
            "uid": uid,
            "convertedObjects": [],
            "result": { "status": "Failure", "message": e.to_string() }
        }),
    };
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "response": response
    })
}

struct Material {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn generate(namespace: &str) -> Result<Material> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "dapr-webhook-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let ca = CertifiedIssuer::self_signed(ca, ca_key)?;
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec![
        "dapr-webhook".to_string(),
        format!("dapr-webhook.{namespace}"),
        format!("dapr-webhook.{namespace}.svc"),
        format!("dapr-webhook.{namespace}.svc.cluster.local"),
        "localhost".to_string(),
    ])?;
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    let cert = leaf.signed_by(&key, &ca)?;
    Ok(Material {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The shared certificate: read from the Secret, or made and stored by the first replica.
async fn material(client: &kube::Client, namespace: &str) -> Result<Material> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let from_secret = |s: Secret| -> Option<Material> {
        let data = s.data?;
        let text = |k: &str| {
            data.get(k)
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        };
        Some(Material {
            ca_pem: text("ca.crt")?,
            cert_pem: text("tls.crt")?,
            key_pem: text("tls.key")?,
        })
    };
    if let Some(m) = secrets.get_opt(SECRET_NAME).await?.and_then(from_secret) {
        return Ok(m);
    }
    let m = generate(namespace)?;
    let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(SECRET_NAME.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            ("ca.crt".into(), bytes(&m.ca_pem)),
            ("tls.crt".into(), bytes(&m.cert_pem)),
            ("tls.key".into(), bytes(&m.key_pem)),
        ])),
        ..Default::default()
    };
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(m),
        // Another replica won the race: use its certificate.
        Err(kube::Error::Api(e)) if e.code == 409 => secrets
            .get_opt(SECRET_NAME)
            .await?
            .and_then(from_secret)
            .context("reading the webhook certificate another replica stored"),
        Err(e) => Err(e.into()),
    }
}

/// Points the installed Subscription CRD at this webhook: the `dapr-webhook` Service in
/// `namespace`, or `url` where Services are not routable (a cluster without kube-proxy).
async fn patch_crd(client: &kube::Client, namespace: &str, url: &str, ca_pem: &str) -> Result<()> {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let client_config = if url.is_empty() {
        json!({ "caBundle": ca, "service": { "name": "dapr-webhook", "namespace": namespace, "path": "/convert" }, "url": null })
    } else {
        json!({ "caBundle": ca, "url": url, "service": null })
    };
    let patch = json!({
        "spec": { "conversion": {
            "strategy": "Webhook",
            "webhook": { "clientConfig": client_config, "conversionReviewVersions": ["v1"] }
        } }
    });
    Api::<CustomResourceDefinition>::all(client.clone())
        .patch(CRD_NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("patching the conversion webhook into {CRD_NAME}"))?;
    Ok(())
}

/// Points the CRD at the webhook and returns the server of `/convert` over TLS on
/// `listener`, which also keeps the CRD pointed at it; it runs until dropped.
pub async fn start(
    client: kube::Client,
    namespace: String,
    url: String,
    listener: tokio::net::TcpListener,
) -> Result<impl std::future::Future<Output = ()> + Send + 'static> {
    let m = material(&client, &namespace).await?;
    let cert = x509_parser::pem::Pem::iter_from_buffer(m.cert_pem.as_bytes())
        .filter_map(Result::ok)
        .map(|p| CertificateDer::from(p.contents))
        .collect::<Vec<_>>();
    let key = x509_parser::pem::Pem::iter_from_buffer(m.key_pem.as_bytes())
        .filter_map(Result::ok)
        .next()
        .map(|p| PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(p.contents)))
        .context("the webhook key")?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(cert, key)
        .context("the webhook certificate")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let router = Router::new().route(
        "/convert",
        post(|Json(body): Json<Value>| async move { Json(review(&body)) }),
    );
    tracing::info!("conversion webhook listening on {}", listener.local_addr()?);
    let accept = async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(router);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    };
    patch_crd(&client, &namespace, &url, &m.ca_pem).await?;
    // Re-applying the chart's CRDs resets the webhook stanza; put it back from time to time.
    let repatch = async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            if let Err(e) = patch_crd(&client, &namespace, &url, &m.ca_pem).await {
                tracing::warn!("{e:#}");
            }
        }
    };
    Ok(async move {
        tokio::join!(accept, repatch);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_and_default_route_convert_both_ways() {
        let v1 = json!({"apiVersion": "dapr.io/v1alpha1", "kind": "Subscription",
            "metadata": {"name": "s"}, "spec": {"pubsubname": "p", "topic": "t", "route": "/orders"},
            "scopes": ["a"]});
        let v2 = convert(v1.clone(), "dapr.io/v2alpha1").expect("up");
        assert_eq!(v2["apiVersion"], "dapr.io/v2alpha1");
        assert_eq!(v2["spec"]["routes"]["default"], "/orders");
        assert!(v2["spec"].get("route").is_none());
        assert_eq!(v2["scopes"], json!(["a"]));
        let back = convert(v2, "dapr.io/v1alpha1").expect("down");
        assert_eq!(back, v1);
    }

    #[test]
    fn a_review_answers_every_object_or_fails_cleanly() {
        let r = review(
            &json!({"request": {"uid": "u1", "desiredAPIVersion": "dapr.io/v2alpha1",
            "objects": [{"apiVersion": "dapr.io/v1alpha1", "spec": {"route": "/x"}}]}}),
        );
        assert_eq!(r["response"]["uid"], "u1");
        assert_eq!(r["response"]["result"]["status"], "Success");
        assert_eq!(
            r["response"]["convertedObjects"][0]["spec"]["routes"]["default"],
            "/x"
        );
        let bad = review(
            &json!({"request": {"uid": "u2", "desiredAPIVersion": "dapr.io/v9",
            "objects": [{"apiVersion": "dapr.io/v1alpha1", "spec": {}}]}}),
        );
        assert_eq!(bad["response"]["result"]["status"], "Failure");
        assert_eq!(
            review(&json!("garbage"))["response"]["result"]["status"],
            "Success"
        );
    }
}
