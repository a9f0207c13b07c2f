//! What an HTTP proxy must get right between a caller, two sidecars and the app: the body
//! that is relayed is framed by its real length, never by a stale `Content-Length`, and
//! hop-by-hop headers (RFC 9110 §7.6.1, and those `Connection` names) stop at each hop,
//! both ways, for apps and for HTTPEndpoints. The app is a raw TCP server, so nothing
//! between it and the sidecar tidies the bytes up.

use std::sync::{Arc, Mutex};

use test_support::daprd::{Sidecar, daprd, resolution_config, resources};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A raw HTTP/1.1 app: records each request head (lowercased) and writes `answer`.
struct RawApp {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
}

async fn raw_app(answer: &'static str) -> RawApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut n = 0;
                loop {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => n += k,
                    }
                    let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    // Read the request's body, then answer and close.
                    while n < end + 4 + length {
                        match sock.read(&mut buf[n..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => n += k,
                        }
                    }
                    seen.lock().expect("heads").push(head);
                    let _ = sock.write_all(answer.as_bytes()).await;
                    let _ = sock.shutdown().await;
                    return;
                }
            });
        }
    });
    RawApp { port, heads }
}

/// The app's sidecar and a caller's, resolving each other through a shared file.
async fn pair(app: &RawApp, name: &str) -> (Sidecar, Sidecar, tempfile::TempDir) {
    let dir = resources(&[]);
    let config = resolution_config(dir.path());
    let callee = daprd()
        .app_id(&format!("{name}-app"))
        .args(["--app-port", &app.port.to_string(), "--config", &config])
        .start()
        .await;
    let caller = daprd()
        .app_id(&format!("{name}-caller"))
        .args(["--config", &config])
        .start()
        .await;
    (callee, caller, dir)
}

#[tokio::test]
async fn a_stale_content_length_from_the_app_is_not_relayed() {
    // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3): the body is 11 bytes.
    let app = raw_app(
        "HTTP/1.1 200 OK\r\ncontent-length: 999\r\ntransfer-encoding: chunked\r\n\
         content-type: text/plain\r\n\r\nb\r\nhello world\r\n0\r\n\r\n",
    )
    .await;
    let (callee, caller, _dir) = pair(&app, "stale").await;
    for (via, sidecar) in [("two sidecars", &caller), ("its own sidecar", &callee)] {
        let r = reqwest::Client::new()
            .get(sidecar.url(&format!("/v1.0/invoke/{}/method/x", callee.app_id)))
            .send()
            .await
            .expect("invoke");
        assert_eq!(r.status(), 200, "via {via}");
        if let Some(len) = r.headers().get("content-length") {
            assert_eq!(len, "11", "via {via}: the real length or none");
        }
        let body = r
            .text()
            .await
            .expect("the whole body, framed by its real length");
        assert_eq!(body, "hello world", "via {via}");
    }
}

/// Hop-by-hop request headers a caller might send, and whether a header named in
/// `Connection` is dropped with it.
const HOP_REQUEST: [(&str, &str); 7] = [
    ("proxy-authorization", "Basic c2VjcmV0"),
    ("http2-settings", "AAMAAABkAARAAAAAAAIAAAAA"),
    ("keep-alive", "timeout=5"),
    ("te", "trailers"),
    ("trailer", "x-checksum"),
    ("connection", "keep-alive, x-hop-secret"),
    ("x-hop-secret", "only for the next hop"),
];

fn send_hop_headers(r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    HOP_REQUEST
        .iter()
        .fold(r, |r, (k, v)| r.header(*k, *v))
        .header("x-end-to-end", "kept")
}

fn assert_no_hop_headers(head: &str, to: &str) {
    for (name, _) in HOP_REQUEST {
        if name == "connection" {
            // The last hop may frame its own connection; never with the caller's tokens.
            assert!(!head.contains("x-hop-secret"), "{to} got {name}:\n{head}");
            continue;
        }
        assert!(
            !head.lines().any(|l| l.starts_with(&format!("{name}:"))),
            "{to} got {name}:\n{head}"
        );
    }
    assert!(
        head.contains("x-end-to-end: kept"),
        "{to} lost an end-to-end header:\n{head}"
    );
}

#[tokio::test]
async fn hop_by_hop_headers_stop_at_every_hop_both_ways() {
    let app = raw_app(
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: x-app-secret\r\n\
         x-app-secret: 1\r\nkeep-alive: timeout=5\r\nproxy-authenticate: Basic\r\n\
         upgrade: foo/1\r\nx-app-end-to-end: kept\r\n\r\nok",
    )
    .await;
    let (callee, caller, _dir) = pair(&app, "hop").await;
    let c = reqwest::Client::new();
    for (via, sidecar) in [("two sidecars", &caller), ("its own sidecar", &callee)] {
        let before = app.heads.lock().expect("heads").len();
        let r = send_hop_headers(
            c.post(sidecar.url(&format!("/v1.0/invoke/{}/method/x", callee.app_id))),
        )
        .body("{}")
        .send()
        .await
        .expect("invoke");
        assert_eq!(r.status(), 200, "via {via}");
        let h = r.headers();
        for name in [
            "x-app-secret",
            "keep-alive",
            "proxy-authenticate",
            "upgrade",
        ] {
            assert!(
                h.get(name).is_none(),
                "via {via}: the caller got {name}: {h:?}"
            );
        }
        assert_eq!(h["x-app-end-to-end"], "kept", "via {via}");
        let heads = app.heads.lock().expect("heads").clone();
        assert_eq!(heads.len(), before + 1);
        assert_no_hop_headers(&heads[before], &format!("the app (via {via})"));
    }
}

#[tokio::test]
async fn hop_by_hop_headers_do_not_reach_http_endpoints() {
    let app =
        raw_app("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nkeep-alive: timeout=5\r\n\r\nok").await;
    let endpoint = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: HTTPEndpoint\nmetadata:\n  name: raw-endpoint\n\
         spec:\n  baseUrl: http://127.0.0.1:{}\n",
        app.port
    );
    let dir = resources(&[("endpoint.yaml", &endpoint)]);
    let sidecar = daprd().resources(dir.path()).start().await;
    let r = send_hop_headers(
        reqwest::Client::new().post(sidecar.url("/v1.0/invoke/raw-endpoint/method/x")),
    )
    .body("{}")
    .send()
    .await
    .expect("invoke");
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("keep-alive").is_none());
    let heads = app.heads.lock().expect("heads").clone();
    assert_eq!(heads.len(), 1);
    assert_no_hop_headers(&heads[0], "the endpoint");
}

/// `Upgrade: h2c` on the HTTP API port: `101 Switching Protocols`, then the answer to the
/// upgrading request over HTTP/2 on the same connection, as Dapr's server gives it. curl
/// (nghttp2) is the client: it speaks the upgrade exactly as RFC 7540 §3.2 describes.
#[tokio::test]
async fn http1_upgrade_to_h2c_switches_protocols() {
    let d = daprd().start().await;
    let url = d.url("/v1.0/metadata");
    let out = tokio::process::Command::new("curl")
        .args(["-sv", "--http2", "--max-time", "10", &url])
        .output()
        .await
        .expect("curl (installed by scripts/test.sh)");
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{trace}");
    assert!(
        trace.contains("< Upgrade: h2c") || trace.contains("> Upgrade: h2c"),
        "{trace}"
    );
    assert!(
        trace.contains("< HTTP/1.1 101 Switching Protocols"),
        "{trace}"
    );
    assert!(
        trace.contains("< HTTP/2 200"),
        "the answer comes over HTTP/2:\n{trace}"
    );
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    assert_eq!(body["id"], d.app_id.as_str());
    // A request with a body is answered as HTTP/1.1 (the server may ignore Upgrade).
    let out = tokio::process::Command::new("curl")
        .args([
            "-sv",
            "--http2",
            "--max-time",
            "10",
            "-H",
            "content-type: application/json",
        ])
        .args([
            "-d",
            r#"[{"key":"k","value":1}]"#,
            &d.url("/v1.0/state/statestore"),
        ])
        .output()
        .await
        .expect("curl");
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(trace.contains("< HTTP/1.1 204"), "{trace}");
}
