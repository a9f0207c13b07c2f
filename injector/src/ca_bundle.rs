//! Keeping the MutatingWebhookConfiguration's `caBundle` in step with the trust anchors,
//! as Dapr's injector does: the API server must trust the certificate Sentry gave the
//! injector, and the anchors may rotate, so every webhook of the configuration is
//! patched to the current bundle at start and again from time to time.

use std::time::Duration;

use json_patch::{AddOperation, Patch as JsonPatch, PatchOperation};
use jsonptr::PointerBuf;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::api::{Api, Patch, PatchParams};

/// The configuration Dapr's chart installs.
pub const WEBHOOK_CONFIGURATION: &str = "dapr-sidecar-injector";

/// The patch that sets every webhook's bundle to `bundle`; empty when all already match.
pub fn bundle_patch(config: &MutatingWebhookConfiguration, bundle: &[u8]) -> JsonPatch {
    let ops = config
        .webhooks
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, w)| w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()) != Some(bundle))
        .map(|(i, _)| {
            PatchOperation::Add(AddOperation {
                path: PointerBuf::from_tokens([
                    "webhooks",
                    &i.to_string(),
                    "clientConfig",
                    "caBundle",
                ]),
                value: serde_json::Value::String(base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    bundle,
                )),
            })
        })
        .collect();
    JsonPatch(ops)
}

/// Patches the configuration once; `Ok(false)` when it does not exist or already matches.
pub async fn patch_once(
    client: &kube::Client,
    name: &str,
    bundle: &[u8],
) -> Result<bool, kube::Error> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let Some(config) = api.get_opt(name).await? else {
        return Ok(false);
    };
    let patch = bundle_patch(&config, bundle);
    if patch.0.is_empty() {
        return Ok(false);
    }
    api.patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await?;
    tracing::info!("set the caBundle of MutatingWebhookConfiguration {name}");
    Ok(true)
}

/// Keeps the bundle in place every `every`, until the process stops.
pub async fn keep(
    client: kube::Client,
    name: String,
    bundle: Vec<u8>,
    every: Duration,
) -> Result<(), std::io::Error> {
    let mut failing = false;
    loop {
        match patch_once(&client, &name, &bundle).await {
            Ok(_) => failing = false,
            Err(e) if !failing => {
                tracing::warn!("could not set the caBundle of {name}: {e}");
                failing = true;
            }
            Err(e) => tracing::debug!("could not set the caBundle of {name}: {e}"),
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, WebhookClientConfig};

    use super::*;

    fn config(bundles: &[Option<&[u8]>]) -> MutatingWebhookConfiguration {
        MutatingWebhookConfiguration {
            webhooks: Some(
                bundles
                    .iter()
                    .map(|b| MutatingWebhook {
                        name: "sidecar-injector.dapr.io".into(),
                        client_config: WebhookClientConfig {
                            ca_bundle: b.map(|b| ByteString(b.to_vec())),
                            ..Default::default()
                        },
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn only_webhooks_with_another_bundle_are_patched() {
        let patch = bundle_patch(&config(&[None, Some(b"PEM"), Some(b"OLD")]), b"PEM");
        let paths: Vec<String> = patch
            .0
            .iter()
            .map(|op| match op {
                PatchOperation::Add(a) => a.path.to_string(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            paths,
            [
                "/webhooks/0/clientConfig/caBundle",
                "/webhooks/2/clientConfig/caBundle"
            ]
        );
        assert!(bundle_patch(&config(&[Some(b"PEM")]), b"PEM").0.is_empty());
    }
}
