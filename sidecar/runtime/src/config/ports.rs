//! The internal gRPC port a sidecar picks when `--dapr-internal-grpc-port` is not given:
//! stable for the same app, directory, user and host, as Dapr computes it, so restarts keep
//! their address.

use sha2::{Digest, Sha256};

/// Dapr's `GetStablePort(47300, appID)`: SHA-256 of `appID|cwd|uid|hostname`, first two
/// bytes little-endian, modulo the range above `start`; a free port if that one is taken.
pub fn stable_port(start: u16, app_id: &str) -> u16 {
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let port = port_for(start, &[app_id, &cwd, &uid.to_string(), host.trim()]);
    if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
        return port;
    }
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(port)
}

fn port_for(start: u16, parts: &[&str]) -> u16 {
    let hash = Sha256::digest(parts.join("|").as_bytes());
    let max_offset = u32::from(u16::MAX - start);
    let rnd = (u32::from(hash[0]) | (u32::from(hash[1]) << 8)) % max_offset;
    start + rnd as u16
}

#[cfg(test)]
mod tests {
    use super::port_for;

    #[test]
    fn ports_are_stable_and_in_range() {
        let a = port_for(47300, &["app", "/work", "0", "host"]);
        assert_eq!(a, port_for(47300, &["app", "/work", "0", "host"]));
        assert!(a >= 47300);
        assert_ne!(a, port_for(47300, &["other", "/work", "0", "host"]));
    }
}
