//! Connections to a gRPC app. One HTTP/2 connection carries only as many calls at once as
//! the app's server allows (`MAX_CONCURRENT_STREAMS`, commonly 100); the calls beyond it
//! would wait for a free stream, and calls that wait on each other would never finish. So,
//! as Dapr does, a call takes a connection with a free slot and a new connection opens
//! when every one is full. `--app-max-concurrency` still caps the calls in flight above.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tonic::transport::{Channel, Endpoint};

/// Calls one connection takes before the next opens: the stream limit most gRPC servers
/// announce (Go's and tonic's servers are configured to it by Dapr's SDKs and ours).
const STREAMS_PER_CONNECTION: usize = 100;

struct Conn {
    channel: Channel,
    in_flight: AtomicUsize,
}

pub(super) struct Pool {
    endpoint: Endpoint,
    connector: Option<HttpsConnector<HttpConnector>>,
    /// Read without a lock on every call; replaced (under `grow`) only to add one.
    conns: ArcSwap<Vec<Arc<Conn>>>,
    grow: Mutex<()>,
}

/// A slot on one connection, given back when the call ends.
pub(super) struct Lease(Arc<Conn>);

impl Lease {
    pub(super) fn channel(&self) -> &Channel {
        &self.0.channel
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Pool {
    pub(super) fn new(
        endpoint: Endpoint,
        connector: Option<HttpsConnector<HttpConnector>>,
    ) -> Self {
        let pool = Self {
            endpoint,
            connector,
            conns: ArcSwap::from_pointee(Vec::new()),
            grow: Mutex::new(()),
        };
        pool.conns.store(Arc::new(vec![pool.connect()]));
        pool
    }

    /// A lazily connecting channel: the app may not listen yet.
    fn connect(&self) -> Arc<Conn> {
        let channel = match &self.connector {
            Some(c) => self.endpoint.connect_with_connector_lazy(c.clone()),
            None => self.endpoint.connect_lazy(),
        };
        Arc::new(Conn {
            channel,
            in_flight: AtomicUsize::new(0),
        })
    }

    fn try_take(conns: &[Arc<Conn>]) -> Option<Lease> {
        conns.iter().find_map(|c| {
            let before = c.in_flight.fetch_add(1, Ordering::AcqRel);
            if before < STREAMS_PER_CONNECTION {
                Some(Lease(c.clone()))
            } else {
                c.in_flight.fetch_sub(1, Ordering::AcqRel);
                None
            }
        })
    }

    /// A slot on the first connection that has one, opening a connection if none has.
    pub(super) fn lease(&self) -> Lease {
        if let Some(lease) = Self::try_take(&self.conns.load()) {
            return lease;
        }
        let _grow = self.grow.lock().unwrap_or_else(|p| p.into_inner());
        // Another call may have grown the pool while this one waited.
        let conns = self.conns.load_full();
        if let Some(lease) = Self::try_take(&conns) {
            return lease;
        }
        let conn = self.connect();
        conn.in_flight.store(1, Ordering::Release);
        let mut grown = Vec::with_capacity(conns.len() + 1);
        grown.extend(conns.iter().cloned());
        grown.push(conn.clone());
        self.conns.store(Arc::new(grown));
        tracing::debug!(
            connections = conns.len() + 1,
            "every connection to the gRPC app is at {STREAMS_PER_CONNECTION} calls; opened another"
        );
        Lease(conn)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.conns.load().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_opens_when_every_one_is_full_and_slots_come_back() {
        let pool = Pool::new(Endpoint::from_static("http://127.0.0.1:9"), None);
        let held: Vec<Lease> = (0..STREAMS_PER_CONNECTION).map(|_| pool.lease()).collect();
        assert_eq!(pool.len(), 1);
        let extra = pool.lease();
        assert_eq!(pool.len(), 2, "the 101st call opens a second connection");
        drop(held);
        // Freed slots on the first connection are used before the second's.
        let again = pool.lease();
        assert!(Arc::ptr_eq(&again.0, &pool.conns.load()[0]));
        drop((extra, again));
        assert!(
            pool.conns
                .load()
                .iter()
                .all(|c| c.in_flight.load(Ordering::Acquire) == 0)
        );
    }
}
