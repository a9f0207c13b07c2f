//! Keeping a process's certificate fresh, whoever issues it: the Sentry client for
//! sidecars and the control plane, Sentry's own authority for Sentry's serving
//! certificate. One loop renews at half the certificate's life, or at once when the
//! issuer says its trust changed, and swaps the new certificate into the `IdentityCell`
//! so that no connection drops.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use rustls::sign::CertifiedKey;
use tokio::sync::watch;

use crate::SpiffeId;
use crate::tls::IdentityCell;

/// A certificate and key as issued, with the life that decides when to renew it.
pub struct Issued {
    pub key: CertifiedKey,
    pub id: SpiffeId,
    pub issued: SystemTime,
    pub not_after: SystemTime,
}

/// Where certificates come from.
pub trait Issuer: Send + Sync + 'static {
    type Error: std::fmt::Display + Send;

    /// What the certificate is for, as the logs name it ("workload certificate").
    const KIND: &'static str;

    fn issue(&self) -> impl Future<Output = Result<Issued, Self::Error>> + Send;
}

/// How long to wait after a failed renewal before trying again.
const RETRY: Duration = Duration::from_secs(1);

/// Gets the first certificate (retrying for `wait`), then renews it for as long as the
/// returned cell is alive: at half its life, and whenever `changed` fires (a new trust
/// bundle). The renewal task ends when the last holder of the cell drops it.
pub async fn start<I: Issuer, T: Send + Sync + 'static>(
    issuer: I,
    wait: Duration,
    changed: Option<watch::Receiver<T>>,
) -> Result<Arc<IdentityCell>, I::Error> {
    let deadline = tokio::time::Instant::now() + wait;
    let first = loop {
        match issuer.issue().await {
            Ok(i) => break i,
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!("getting a certificate: {e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e),
        }
    };
    tracing::info!(id = %first.id, "{} issued, valid until {:?}", I::KIND, first.not_after);
    let cell = IdentityCell::new(first.key, first.id);
    tokio::spawn(renew(
        issuer,
        Arc::downgrade(&cell),
        (first.issued, first.not_after),
        changed,
    ));
    Ok(cell)
}

async fn renew<I: Issuer, T: Send + Sync + 'static>(
    issuer: I,
    cell: Weak<IdentityCell>,
    (mut issued, mut not_after): (SystemTime, SystemTime),
    mut changed: Option<watch::Receiver<T>>,
) {
    loop {
        let life = not_after.duration_since(issued).unwrap_or_default();
        let wait = (issued + life / 2)
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        let trust_changed = async {
            match changed.as_mut() {
                Some(rx) => rx.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            ok = trust_changed => if !ok {
                // The trust source is gone: renew on time only.
                changed = None;
            }
        }
        if cell.strong_count() == 0 {
            return;
        }
        match issuer.issue().await {
            Ok(i) => {
                let Some(cell) = cell.upgrade() else { return };
                tracing::info!(id = %i.id, "renewed the {}", I::KIND);
                cell.replace(i.key);
                (issued, not_after) = (i.issued, i.not_after);
            }
            Err(e) => {
                tracing::warn!("renewing the {}: {e}", I::KIND);
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Issues short-lived self-signed certificates and counts them.
    struct Counting {
        life: Duration,
        issued: Arc<AtomicUsize>,
    }

    impl Issuer for Counting {
        const KIND: &'static str = "test certificate";
        type Error = String;

        async fn issue(&self) -> Result<Issued, String> {
            self.issued.fetch_add(1, Ordering::SeqCst);
            let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
            let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
                .and_then(|p| p.self_signed(&key))
                .map_err(|e| e.to_string())?;
            let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
            let signing =
                rustls::crypto::ring::sign::any_supported_type(&der).map_err(|e| e.to_string())?;
            let now = SystemTime::now();
            Ok(Issued {
                key: CertifiedKey::new(vec![cert.der().clone()], signing),
                id: SpiffeId::new("example.org", "default", "app"),
                issued: now,
                not_after: now + self.life,
            })
        }
    }

    #[tokio::test]
    async fn renews_at_half_life_and_on_trust_change_then_stops_with_the_cell() {
        let issued = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = watch::channel(());
        let cell = start(
            Counting {
                life: Duration::from_millis(400),
                issued: issued.clone(),
            },
            Duration::from_secs(1),
            Some(rx),
        )
        .await
        .expect("first certificate");
        let first = cell.current();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(issued.load(Ordering::SeqCst) >= 2, "renewed at half life");
        assert!(
            !Arc::ptr_eq(&first, &cell.current()),
            "the cell holds the new one"
        );

        let before = issued.load(Ordering::SeqCst);
        tx.send(()).expect("receiver alive");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            issued.load(Ordering::SeqCst) > before,
            "renewed on trust change"
        );

        drop(cell);
        tokio::time::sleep(Duration::from_millis(450)).await;
        let after_drop = issued.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert_eq!(
            issued.load(Ordering::SeqCst),
            after_drop,
            "stopped with the cell"
        );
    }
}
