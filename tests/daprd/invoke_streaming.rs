//! A 64 MiB request and a 64 MiB response through two sidecars: both bodies arrive intact,
//! and neither sidecar's peak memory comes near the body size, so nothing was buffered whole.

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use futures::StreamExt;
use test_support::daprd::{daprd, resources};

const SIZE: usize = 64 << 20;
const CHUNK: usize = 64 << 10;

fn byte_at(i: usize) -> u8 {
    (i.wrapping_mul(31) % 251) as u8
}

/// A checksum that notices reordered, lost or duplicated bytes.
fn fold(mut acc: (u64, u64), offset: usize, data: &[u8]) -> (u64, u64) {
    for (i, b) in data.iter().enumerate() {
        acc.0 = acc.0.wrapping_add(u64::from(*b));
        acc.1 = acc
            .1
            .wrapping_add(u64::from(*b).wrapping_mul((offset + i) as u64 + 1));
    }
    acc
}

async fn sink(body: Body) -> String {
    let mut stream = body.into_data_stream();
    let (mut len, mut sum) = (0usize, (0u64, 0u64));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("request body chunk");
        sum = fold(sum, len, &chunk);
        len += chunk.len();
    }
    format!("{len} {} {}", sum.0, sum.1)
}

async fn source() -> Body {
    let chunks = futures::stream::iter((0..SIZE / CHUNK).map(|c| {
        let data: Vec<u8> = (c * CHUNK..(c + 1) * CHUNK).map(byte_at).collect();
        Ok::<_, std::io::Error>(bytes::Bytes::from(data))
    }));
    Body::from_stream(chunks)
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kb / 1024.0
}

#[tokio::test]
async fn sixty_four_mib_each_way_with_bounded_memory() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind app");
    let port = listener.local_addr().expect("addr").port();
    let app = Router::new()
        .route("/sink", post(sink))
        .route("/source", post(source));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dir = resources(&[]);
    let config = test_support::daprd::resolution_config(dir.path());
    let callee = daprd()
        .app_id("big-callee")
        .args([
            "--app-port",
            &port.to_string(),
            "--config",
            &config,
            "--max-body-size",
            "128Mi",
        ])
        .start()
        .await;
    let caller = daprd()
        .app_id("big-caller")
        .args(["--config", &config, "--max-body-size", "128Mi"])
        .start()
        .await;
    let c = reqwest::Client::new();

    let payload: Vec<u8> = (0..SIZE).map(byte_at).collect();
    let expected = fold((0, 0), 0, &payload);
    let r = c
        .post(caller.url("/v1.0/invoke/big-callee/method/sink"))
        .body(payload)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.expect("body"),
        format!("{SIZE} {} {}", expected.0, expected.1)
    );

    println!(
        "after upload: caller {:.1} MiB, callee {:.1} MiB",
        peak_rss_mib(caller.pid()),
        peak_rss_mib(callee.pid())
    );
    {
        let r = c
            .post(callee.url("/v1.0/invoke/big-callee/method/source"))
            .send()
            .await
            .expect("local download");
        let mut stream = r.bytes_stream();
        let mut n = 0;
        while let Some(chunk) = stream.next().await {
            n += chunk.expect("chunk").len();
        }
        assert_eq!(n, SIZE);
        println!(
            "after local download: callee {:.1} MiB",
            peak_rss_mib(callee.pid())
        );
    }
    let r = c
        .post(caller.url("/v1.0/invoke/big-callee/method/source"))
        .send()
        .await
        .expect("download");
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let (mut len, mut sum) = (0usize, (0u64, 0u64));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("response chunk");
        sum = fold(sum, len, &chunk);
        len += chunk.len();
    }
    assert_eq!(len, SIZE);
    assert_eq!(sum, expected, "the response arrived intact");

    for (name, pid) in [("caller", caller.pid()), ("callee", callee.pid())] {
        let peak = peak_rss_mib(pid);
        println!("{name} sidecar peak RSS: {peak:.1} MiB");
        assert!(
            peak < 40.0,
            "{name} sidecar peaked at {peak:.1} MiB for a 64 MiB body: it buffered"
        );
    }
}
