//! `nameresolution.mdns`, Dapr's standalone default: sidecars on one link find each other
//! by app id with no configuration, over multicast DNS (224.0.0.251:5353).
//!
//! The records are the ones Dapr's zeroconf resolver publishes, so a Go sidecar and this
//! one can find each other: the app id is the DNS-SD service type, the instance is
//! `<hostname>:<pid>`, and the instance's TXT record holds the app id:
//!
//! ```text
//! <appId>.local.                    PTR  <hostname>:<pid>.<appId>.local.
//! <hostname>:<pid>.<appId>.local.   SRV  0 0 <internal gRPC port> <hostname>.local.
//! <hostname>:<pid>.<appId>.local.   TXT  "<appId>"
//! <hostname>.local.                 A    <address of the interface the answer leaves by>
//! ```
//!
//! When the sidecar's address is pinned (`DAPR_HOST_IP`, or an internal gRPC server bound
//! to loopback) that one address is published on every interface instead, as an AAAA
//! record when it is IPv6.
//!
//! Queries and answers go to the multicast group, never unicast (except to legacy
//! resolvers that ask from a port other than 5353), so every sidecar on the host sees
//! every answer and caches it. Found addresses live 60 s and are refreshed in the
//! background after 30 s, as Dapr does. The multicast itself is IPv4 only.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use simple_dns::rdata::{A, AAAA, PTR, RData, SRV, TXT};
use simple_dns::{CLASS, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, ResourceRecord, TYPE};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use components_core::nameresolution::{Instance, ResolveError, Resolver};
use components_core::{ComponentError, Registry};

const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
const PORT: u16 = 5353;
/// Dapr keeps a found address this long without hearing it again.
const ADDRESS_TTL: Duration = Duration::from_secs(60);
/// After this long a cached address is still used, but asked for again in the background.
const REFRESH_AFTER: Duration = Duration::from_secs(30);
/// How long a lookup with nothing cached waits for the first answer.
const BROWSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The TTL put on our records (RFC 6762's recommendation for host records).
const RECORD_TTL: u32 = 120;
/// mDNS packets fit one Ethernet frame; anything bigger is not ours to parse.
const MAX_PACKET: usize = 9000;

/// What this sidecar announces.
struct Advert {
    app_id: String,
    /// `<hostname>:<pid>`, unique per process as in Dapr.
    instance: String,
    hostname: String,
    port: u16,
    /// Set when the sidecar's address is pinned; otherwise each interface publishes its
    /// own.
    fixed_ip: Option<IpAddr>,
}

struct Found {
    instance: String,
    addr: SocketAddr,
    seen: Instant,
    expires: Instant,
}

struct Shared {
    socket: UdpSocket,
    /// The IPv4 addresses of the multicast-capable interfaces we joined the group on.
    interfaces: Vec<Ipv4Addr>,
    /// Choosing the outgoing interface and sending are one step.
    send_lock: tokio::sync::Mutex<()>,
    advert: Advert,
    /// App id (lowercase, as DNS names compare) → its instances.
    cache: Mutex<HashMap<String, Vec<Found>>>,
    found: Notify,
    next: AtomicUsize,
}

/// Registers this crate's backends.
pub fn register(registry: &mut Registry) {
    registry.register_resolver("mdns", |init| async move {
        Ok(Arc::new(MdnsResolver::start(init.instance).await?) as Arc<dyn Resolver>)
    });
}

pub struct MdnsResolver {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

fn err(e: impl std::fmt::Display) -> ComponentError {
    ComponentError::Connect(format!("mDNS: {e}"))
}

/// IPv4 addresses of the interfaces that are up and can multicast (loopback included when
/// it has been given the MULTICAST flag, as in a test network namespace).
fn multicast_interfaces() -> Result<Vec<Ipv4Addr>, ComponentError> {
    use nix::net::if_::InterfaceFlags;
    let mut out = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(err)? {
        let flags = ifa.flags;
        if !flags.contains(InterfaceFlags::IFF_UP) || !flags.contains(InterfaceFlags::IFF_MULTICAST)
        {
            continue;
        }
        if let Some(ip) = ifa
            .address
            .as_ref()
            .and_then(|a| a.as_sockaddr_in())
            .map(|s| s.ip())
            && !out.contains(&ip)
        {
            out.push(ip);
        }
    }
    Ok(out)
}

fn bind(interfaces: &[Ipv4Addr]) -> Result<UdpSocket, ComponentError> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
    // Every sidecar on the host (and avahi, if present) shares port 5353; multicast
    // datagrams are delivered to each of them.
    socket.set_reuse_address(true).map_err(err)?;
    socket.set_reuse_port(true).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    socket
        .bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, PORT)).into())
        .map_err(|e| err(format!("binding 0.0.0.0:{PORT}: {e}")))?;
    socket.set_multicast_loop_v4(true).map_err(err)?;
    socket.set_multicast_ttl_v4(255).map_err(err)?;
    for ip in interfaces {
        socket
            .join_multicast_v4(&GROUP, ip)
            .map_err(|e| err(format!("joining {GROUP} on {ip}: {e}")))?;
    }
    UdpSocket::from_std(socket.into()).map_err(err)
}

impl MdnsResolver {
    /// Joins the mDNS group on every multicast-capable interface, starts answering for
    /// `me`, and announces it.
    pub async fn start(me: Instance) -> Result<Self, ComponentError> {
        let interfaces = multicast_interfaces()?;
        if interfaces.is_empty() {
            return Err(err(
                "no network interface is up with multicast; choose another name resolution \
                 component (for example sqlite) in the Configuration's spec.nameResolution",
            ));
        }
        let socket = bind(&interfaces)?;
        let (host, port) = me
            .address
            .rsplit_once(':')
            .ok_or_else(|| err(format!("invalid address {:?}", me.address)))?;
        let port: u16 = port
            .parse()
            .map_err(|_| err(format!("invalid port in {:?}", me.address)))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let fixed_ip = match host.parse::<IpAddr>() {
            Ok(ip) if me.pinned => Some(ip),
            _ if me.pinned => {
                return Err(err(format!(
                    "the address to announce must be an IP address, not {host:?}"
                )));
            }
            _ => None,
        };
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let advert = Advert {
            instance: format!("{hostname}:{}", std::process::id()),
            app_id: me.app_id,
            hostname,
            port,
            fixed_ip,
        };
        let shared = Arc::new(Shared {
            socket,
            interfaces,
            send_lock: tokio::sync::Mutex::new(()),
            advert,
            cache: Mutex::new(HashMap::new()),
            found: Notify::new(),
            next: AtomicUsize::new(0),
        });
        let listener = tokio::spawn(listen(shared.clone()));
        // RFC 6762 §8.3: announce twice, a second apart.
        let announcer = {
            let shared = shared.clone();
            tokio::spawn(async move {
                for _ in 0..2 {
                    shared.announce(RECORD_TTL).await;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        };
        tracing::info!(
            app_id = %shared.advert.app_id,
            interfaces = ?shared.interfaces,
            "mDNS name resolution: announcing {}.{}.local. at {}",
            shared.advert.instance,
            shared.advert.app_id,
            shared
                .advert
                .fixed_ip
                .map_or_else(|| "each interface's address".to_string(), |ip| ip.to_string())
        );
        Ok(Self {
            shared,
            tasks: vec![listener, announcer],
        })
    }
}

impl Drop for MdnsResolver {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[async_trait]
impl Resolver for MdnsResolver {
    async fn resolve(&self, app_id: &str, _namespace: &str) -> Result<String, ResolveError> {
        let key = app_id.to_ascii_lowercase();
        if let Some((addr, stale)) = self.shared.pick(&key) {
            if stale {
                self.shared.query(app_id).await;
            }
            return Ok(addr.to_string());
        }
        let deadline = tokio::time::Instant::now() + BROWSE_TIMEOUT;
        // Ask, then ask again with growing pauses in case the first packet was lost.
        let mut pause = Duration::from_millis(100);
        loop {
            let answered = self.shared.found.notified();
            self.shared.query(app_id).await;
            let wait_until = (tokio::time::Instant::now() + pause).min(deadline);
            let _ = tokio::time::timeout_at(wait_until, answered).await;
            if let Some((addr, _)) = self.shared.pick(&key) {
                return Ok(addr.to_string());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ResolveError::NotFound(app_id.to_string()));
            }
            pause = (pause * 2).min(Duration::from_millis(800));
        }
    }

    /// Says goodbye (the records with TTL 0) so others drop this sidecar at once.
    async fn unregister(&self) {
        self.shared.announce(0).await;
    }
}

impl Shared {
    /// One live address of the app, spread over its instances, and whether it is due
    /// for a refresh.
    fn pick(&self, key: &str) -> Option<(SocketAddr, bool)> {
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let entries = cache.get_mut(key)?;
        entries.retain(|f| f.expires > now);
        if entries.is_empty() {
            cache.remove(key);
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % entries.len();
        let stale = entries
            .iter()
            .all(|f| now.duration_since(f.seen) > REFRESH_AFTER);
        if stale {
            // Ask once per refresh period, not on every call.
            for f in entries.iter_mut() {
                f.seen = now;
            }
        }
        Some((entries[i].addr, stale))
    }

    async fn send_all(&self, build: impl Fn(Ipv4Addr) -> Option<Vec<u8>>) {
        let _guard = self.send_lock.lock().await;
        let to = SocketAddr::from((GROUP, PORT));
        for ip in &self.interfaces {
            let Some(bytes) = build(*ip) else { continue };
            let sock = socket2::SockRef::from(&self.socket);
            if let Err(e) = sock.set_multicast_if_v4(ip) {
                tracing::debug!("mDNS: choosing interface {ip}: {e}");
                continue;
            }
            if let Err(e) = self.socket.send_to(&bytes, to).await {
                tracing::debug!("mDNS: sending on {ip}: {e}");
            }
        }
    }

    async fn query(&self, app_id: &str) {
        let bytes = (|| {
            let mut p = Packet::new_query(0);
            p.questions.push(Question::new(
                Name::new(&format!("{app_id}.local")).ok()?.into_owned(),
                QTYPE::TYPE(TYPE::PTR),
                QCLASS::CLASS(CLASS::IN),
                false,
            ));
            p.build_bytes_vec_compressed().ok()
        })();
        if let Some(bytes) = bytes {
            self.send_all(|_| Some(bytes.clone())).await;
        }
    }

    async fn announce(&self, ttl: u32) {
        self.send_all(|ip| {
            let mut p = Packet::new_reply(0);
            p.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
            self.records(ip, ttl, &mut p)?;
            p.build_bytes_vec_compressed().ok()
        })
        .await;
    }

    /// Our PTR as the answer, and SRV, TXT and A as additional records.
    fn records<'a>(&'a self, ip: Ipv4Addr, ttl: u32, p: &mut Packet<'a>) -> Option<()> {
        let a = &self.advert;
        let service = service_name(&a.app_id)?;
        let instance = instance_name(&a.instance, &a.app_id)?;
        let host = Name::new(&format!("{}.local", a.hostname))
            .ok()?
            .into_owned();
        let address = match a.fixed_ip.unwrap_or(IpAddr::V4(ip)) {
            IpAddr::V4(v4) => RData::A(A::from(v4)),
            IpAddr::V6(v6) => RData::AAAA(AAAA::from(v6)),
        };
        p.answers.push(ResourceRecord::new(
            service,
            CLASS::IN,
            ttl,
            RData::PTR(PTR(instance.clone())),
        ));
        p.additional_records.push(
            ResourceRecord::new(
                instance.clone(),
                CLASS::IN,
                ttl,
                RData::SRV(SRV {
                    priority: 0,
                    weight: 0,
                    port: a.port,
                    target: host.clone(),
                }),
            )
            .with_cache_flush(true),
        );
        p.additional_records.push(
            ResourceRecord::new(
                instance,
                CLASS::IN,
                ttl,
                RData::TXT(TXT::new().with_string(&a.app_id).ok()?),
            )
            .with_cache_flush(true),
        );
        p.additional_records
            .push(ResourceRecord::new(host, CLASS::IN, ttl, address).with_cache_flush(true));
        Some(())
    }

    /// Whether a question asks for something we publish.
    fn asks_for_us(&self, q: &Question) -> bool {
        let a = &self.advert;
        let any = q.qtype == QTYPE::ANY;
        let labels = q.qname.get_labels();
        let is = |expected: &[&str]| {
            labels.len() == expected.len()
                && labels
                    .iter()
                    .zip(expected)
                    .all(|(l, e)| l.as_ref().eq_ignore_ascii_case(e.as_bytes()))
        };
        let host = format!("{}.local", a.hostname);
        let host_labels: Vec<&str> = host.split('.').collect();
        (is(&[&a.app_id, "local"]) && (any || q.qtype == QTYPE::TYPE(TYPE::PTR)))
            || (is(&[&a.instance, &a.app_id, "local"])
                && (any || q.qtype == QTYPE::TYPE(TYPE::SRV) || q.qtype == QTYPE::TYPE(TYPE::TXT)))
            || (is(&host_labels)
                && (any || q.qtype == QTYPE::TYPE(TYPE::A) || q.qtype == QTYPE::TYPE(TYPE::AAAA)))
    }

    async fn answer(&self, query: &Packet<'_>, from: SocketAddr) {
        if !query.questions.iter().any(|q| self.asks_for_us(q)) {
            return;
        }
        if from.port() == PORT {
            self.announce(RECORD_TTL).await;
            return;
        }
        // A legacy (one-shot) resolver: answer it directly, echoing its id and question
        // (RFC 6762 §6.7), with the address it reached us on.
        let ip = match self.socket.local_addr() {
            Ok(SocketAddr::V4(a)) if !a.ip().is_unspecified() => *a.ip(),
            _ => self
                .interfaces
                .first()
                .copied()
                .unwrap_or(Ipv4Addr::LOCALHOST),
        };
        let mut p = Packet::new_reply(query.id());
        p.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
        p.questions = query.questions.clone();
        if self.records(ip, 10, &mut p).is_none() {
            return;
        }
        if let Ok(bytes) = p.build_bytes_vec_compressed() {
            let _guard = self.send_lock.lock().await;
            let _ = self.socket.send_to(&bytes, from).await;
        }
    }

    /// Caches every Dapr instance a response describes (SRV plus the A record of its
    /// target, or the sender's address when the A record is missing); TTL 0 removes it.
    fn learn(&self, response: &Packet<'_>, from: SocketAddr) {
        let records: Vec<&ResourceRecord> = response
            .answers
            .iter()
            .chain(&response.additional_records)
            .collect();
        let now = Instant::now();
        let mut learned = false;
        for rr in &records {
            let RData::SRV(srv) = &rr.rdata else { continue };
            let labels = rr.name.get_labels();
            // `<instance>.<appId>.local.`; the instance itself may contain dots.
            if labels.len() < 3
                || !labels[labels.len() - 1]
                    .as_ref()
                    .eq_ignore_ascii_case(b"local")
            {
                continue;
            }
            let Ok(app_id) = std::str::from_utf8(labels[labels.len() - 2].as_ref()) else {
                continue;
            };
            let instance = rr.name.to_string();
            let ip = records
                .iter()
                .find_map(|r| match &r.rdata {
                    RData::A(a) if r.name == srv.target => {
                        Some(IpAddr::from(Ipv4Addr::from(a.address)))
                    }
                    RData::AAAA(a) if r.name == srv.target => {
                        Some(IpAddr::from(std::net::Ipv6Addr::from(a.address)))
                    }
                    _ => None,
                })
                .or(Some(from.ip()));
            let Some(ip) = ip else { continue };
            let key = app_id.to_ascii_lowercase();
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let entries = cache.entry(key).or_default();
            entries.retain(|f| f.instance != instance);
            if rr.ttl > 0 {
                let live = Duration::from_secs(u64::from(rr.ttl)).min(ADDRESS_TTL);
                entries.push(Found {
                    instance,
                    addr: SocketAddr::new(ip, srv.port),
                    seen: now,
                    expires: now + live,
                });
                learned = true;
            }
        }
        if learned {
            self.found.notify_waiters();
        }
    }
}

fn service_name(app_id: &str) -> Option<Name<'static>> {
    Some(Name::new(&format!("{app_id}.local")).ok()?.into_owned())
}

/// `<instance>.<appId>.local.` with the instance as one label, whatever it contains.
fn instance_name(instance: &str, app_id: &str) -> Option<Name<'static>> {
    use simple_dns::Label;
    let labels = [
        Label::new(instance.as_bytes()).ok()?,
        Label::new(app_id.as_bytes()).ok()?,
        Label::new(&b"local"[..]).ok()?,
    ];
    Some(Name::new_with_labels(&labels).into_owned())
}

async fn listen(shared: Arc<Shared>) {
    let mut buf = vec![0u8; MAX_PACKET];
    loop {
        let (n, from) = match shared.socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("mDNS: receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(packet) = Packet::parse(&buf[..n]) else {
            tracing::debug!("mDNS: ignoring a malformed packet from {from}");
            continue;
        };
        if packet.has_flags(PacketFlag::RESPONSE) {
            shared.learn(&packet, from);
        } else {
            shared.answer(&packet, from).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn shared_for_test() -> Shared {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        Shared {
            socket,
            interfaces: vec![Ipv4Addr::new(10, 0, 0, 5)],
            send_lock: tokio::sync::Mutex::new(()),
            advert: Advert {
                app_id: "orders".into(),
                instance: "box.example:4242".into(),
                hostname: "box".into(),
                port: 50002,
                fixed_ip: None,
            },
            cache: Mutex::new(HashMap::new()),
            found: Notify::new(),
            next: AtomicUsize::new(0),
        }
    }

    #[tokio::test]
    async fn our_answer_round_trips_into_the_cache_of_another_sidecar() {
        let s = shared_for_test().await;
        let mut p = Packet::new_reply(0);
        s.records(Ipv4Addr::new(10, 0, 0, 5), RECORD_TTL, &mut p)
            .expect("records");
        let bytes = p.build_bytes_vec_compressed().expect("encode");
        let parsed = Packet::parse(&bytes).expect("decode");
        // The instance keeps its dot inside one label: Dapr's `<host:pid>.<appId>.local.`.
        assert_eq!(parsed.answers.len(), 1);
        s.learn(&parsed, "10.0.0.9:5353".parse().expect("addr"));
        let (addr, stale) = s.pick("orders").expect("learned");
        assert_eq!(addr.to_string(), "10.0.0.5:50002");
        assert!(!stale);
    }

    #[tokio::test]
    async fn a_pinned_address_is_published_on_every_interface_v4_or_v6() {
        for (pinned, expected) in [("127.0.0.1", "127.0.0.1:50002"), ("::1", "[::1]:50002")] {
            let mut s = shared_for_test().await;
            s.advert.fixed_ip = Some(pinned.parse().expect("ip"));
            let mut p = Packet::new_reply(0);
            s.records(Ipv4Addr::new(10, 0, 0, 5), RECORD_TTL, &mut p)
                .expect("records");
            let bytes = p.build_bytes_vec_compressed().expect("encode");
            s.learn(
                &Packet::parse(&bytes).expect("decode"),
                "10.0.0.9:5353".parse().expect("addr"),
            );
            let (addr, _) = s.pick("orders").expect("learned");
            assert_eq!(addr.to_string(), expected);
        }
    }

    #[tokio::test]
    async fn a_goodbye_removes_the_instance() {
        let s = shared_for_test().await;
        let from: SocketAddr = "10.0.0.9:5353".parse().expect("addr");
        for ttl in [RECORD_TTL, 0] {
            let mut p = Packet::new_reply(0);
            s.records(Ipv4Addr::new(10, 0, 0, 5), ttl, &mut p)
                .expect("records");
            let bytes = p.build_bytes_vec_compressed().expect("encode");
            s.learn(&Packet::parse(&bytes).expect("decode"), from);
        }
        assert!(s.pick("orders").is_none());
    }

    #[tokio::test]
    async fn questions_for_our_records_are_recognised() {
        let s = shared_for_test().await;
        let q = |name: &str, t: QTYPE| {
            Question::new(
                Name::new(name).expect("name").into_owned(),
                t,
                QCLASS::CLASS(CLASS::IN),
                false,
            )
        };
        assert!(s.asks_for_us(&q("Orders.local", QTYPE::TYPE(TYPE::PTR))));
        assert!(s.asks_for_us(&q("box.local", QTYPE::TYPE(TYPE::A))));
        assert!(s.asks_for_us(&q("orders.local", QTYPE::ANY)));
        assert!(!s.asks_for_us(&q("payments.local", QTYPE::TYPE(TYPE::PTR))));
        assert!(!s.asks_for_us(&q("orders.local", QTYPE::TYPE(TYPE::A))));
        let instance = instance_name("box.example:4242", "orders").expect("name");
        let srv = Question::new(
            instance,
            QTYPE::TYPE(TYPE::SRV),
            QCLASS::CLASS(CLASS::IN),
            false,
        );
        assert!(s.asks_for_us(&srv));
    }

    #[test]
    fn garbage_is_not_a_packet() {
        assert!(Packet::parse(&[0xff; 7]).is_err());
    }
}
