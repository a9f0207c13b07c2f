//! sentry-bench: how fast Sentry signs, and what mTLS costs the first call between two
//! sidecars. Prints figures and ratios; it is not a test.
//!
//! 1. Signing in process on every core: CSRs are made up front (that is the client's
//!    work), then `Authority::sign` runs on N threads. The baseline, in the same run, is
//!    the two public-key operations every signing needs and nothing else: one ECDSA P-256
//!    verification (the CSR's signature) and one ECDSA P-256 signature (the certificate).
//! 2. Signing over the wire: a real `sentry` process, 16 concurrent TLS clients.
//! 3. The first call between two sidecars, plaintext next to mTLS (which adds a TLS
//!    handshake with client certificates), each followed by steady-state calls.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bench::sidecar::free_ports;
use clap::Parser;
use proto::sentry::v1::SignCertificateRequest;
use proto::sentry::v1::ca_client::CaClient;
use proto::sentry::v1::sign_certificate_request::TokenValidator;
use rcgen::KeyPair;

#[derive(Parser)]
#[command(about = "Sentry signing throughput and the cost of the first mTLS call")]
struct Args {
    /// The `sentry` binary.
    #[arg(long)]
    sentry: PathBuf,
    /// The `daprd` binary.
    #[arg(long)]
    daprd: PathBuf,
    /// CSRs signed in process.
    #[arg(long, default_value_t = 20000)]
    csrs: usize,
    /// Seconds of signing over gRPC.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

fn csr_pem() -> Result<Vec<u8>> {
    Ok(test_support::certs::csr_pem(&KeyPair::generate()?))
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Runs `work(i)` for i in 0..n over all cores; returns operations per second.
fn parallel_rate(n: usize, work: impl Fn(usize) -> Result<()> + Sync) -> Result<f64> {
    let t = threads();
    let started = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..t)
            .map(|k| {
                let work = &work;
                s.spawn(move || -> Result<()> {
                    let mut i = k;
                    while i < n {
                        work(i)?;
                        i += t;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
        }
        Ok(())
    })?;
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

fn in_process(csrs: usize) -> Result<(f64, f64)> {
    eprintln!("making {csrs} CSRs...");
    let pems: Vec<Vec<u8>> = (0..csrs).map(|_| csr_pem()).collect::<Result<_>>()?;
    let authority = sentry::ca::Authority::load(sentry::ca::generate("bench.local")?)?;
    let ttl = Duration::from_secs(24 * 3600);
    let skew = Duration::from_secs(900);
    let signed = parallel_rate(csrs, |i| {
        authority
            .sign(&pems[i], "spiffe://public/ns/default/app", &[], ttl, skew)
            .map(|_| ())
            .map_err(Into::into)
    })?;
    // Baseline: one P-256 verification and one P-256 signature per certificate.
    use ring::signature::{self, KeyPair as _};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 =
        signature::EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("key"))?;
    let key = signature::EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        pkcs8.as_ref(),
        &rng,
    )
    .map_err(|_| anyhow::anyhow!("key"))?;
    let message = vec![7u8; 400];
    let sig = key
        .sign(&rng, &message)
        .map_err(|_| anyhow::anyhow!("sign"))?;
    let public = signature::UnparsedPublicKey::new(
        &signature::ECDSA_P256_SHA256_ASN1,
        key.public_key().as_ref().to_vec(),
    );
    let baseline = parallel_rate(csrs, |_| {
        public
            .verify(&message, sig.as_ref())
            .map_err(|_| anyhow::anyhow!("verify"))?;
        key.sign(&rng, &message)
            .map_err(|_| anyhow::anyhow!("sign"))?;
        Ok(())
    })?;
    Ok((signed, baseline))
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_sentry(bin: &PathBuf, dir: &std::path::Path) -> Result<(Killed, u16, String)> {
    let [port, healthz, metrics] = free_ports::<3>();
    let creds = dir.join("creds");
    let child = Command::new(bin)
        .args(["--port", &port.to_string(), "--listen-address", "127.0.0.1"])
        .args([
            "--healthz-port",
            &healthz.to_string(),
            "--metrics-port",
            &metrics.to_string(),
        ])
        .args(["--trust-domain", "cp.example", "--issuer-credentials"])
        .arg(&creds)
        .env("NAMESPACE", "dapr-system")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting sentry")?;
    let child = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("sentry did not listen");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ca = std::fs::read_to_string(creds.join("ca.crt"))?;
    Ok((child, port, ca))
}

async fn over_grpc(bin: &PathBuf, seconds: u64) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let (_sentry, port, ca) = start_sentry(bin, dir.path()).await?;
    let roots = security::sentry_client::root_store(&ca)?;
    let sentry_id = security::SpiffeId::new("cp.example", "dapr-system", "dapr-sentry");
    let config = security::client_config(None, roots, move |id| *id == sentry_id);
    let pems: Arc<Vec<Vec<u8>>> = Arc::new((0..512).map(|_| csr_pem()).collect::<Result<_>>()?);
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for w in 0..16 {
        let channel = security::channel_with_tls(&format!("127.0.0.1:{port}"), config.clone())
            .map_err(anyhow::Error::msg)?;
        let pems = pems.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = CaClient::new(channel);
            let mut n = 0u64;
            while Instant::now() < until {
                let req = SignCertificateRequest {
                    id: "app".into(),
                    namespace: "default".into(),
                    certificate_signing_request: pems[(w * 31 + n as usize) % pems.len()].clone(),
                    token_validator: TokenValidator::Insecure as i32,
                    ..Default::default()
                };
                if client.sign_certificate(req).await.is_ok() {
                    n += 1;
                }
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await?;
    }
    Ok(total as f64 / seconds as f64)
}

/// An HTTP app answering every request with 200.
async fn start_app() -> Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Ok(port)
}

struct Pair {
    _callee: Killed,
    _caller: Killed,
    caller_http: u16,
}

async fn start_pair(
    daprd: &PathBuf,
    dir: &std::path::Path,
    tag: &str,
    mtls: Option<(u16, &str)>,
) -> Result<Pair> {
    let app = start_app().await?;
    let config = dir.join(format!("{tag}.yaml"));
    std::fs::write(
        &config,
        format!(
            "kind: Configuration\nmetadata:\n  name: c\nspec:\n  nameResolution:\n    component: sqlite\n    version: v1\n    configuration:\n      connectionString: \"{}\"\n",
            dir.join(format!("{tag}.db")).display()
        ),
    )?;
    let spawn = |app_id: &str, app_port: Option<u16>| -> Result<(Killed, u16)> {
        let [http, grpc, internal, metrics] = free_ports::<4>();
        let mut cmd = Command::new(daprd);
        cmd.args(["--app-id", &format!("{tag}-{app_id}")])
            .args([
                "--dapr-http-port",
                &http.to_string(),
                "--dapr-grpc-port",
                &grpc.to_string(),
            ])
            .args([
                "--dapr-internal-grpc-port",
                &internal.to_string(),
                "--metrics-port",
                &metrics.to_string(),
            ])
            .args(["--dapr-listen-addresses", "127.0.0.1", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(p) = app_port {
            cmd.args(["--app-port", &p.to_string()]);
        }
        if let Some((sentry_port, ca)) = mtls {
            cmd.args([
                "--enable-mtls",
                "--sentry-address",
                &format!("127.0.0.1:{sentry_port}"),
            ])
            .args([
                "--control-plane-trust-domain",
                "cp.example",
                "--control-plane-namespace",
                "dapr-system",
            ])
            .env("DAPR_TRUST_ANCHORS", ca);
        }
        Ok((Killed(cmd.spawn()?), http))
    };
    let (callee, callee_http) = spawn("callee", Some(app))?;
    let (caller, caller_http) = spawn("caller", None)?;
    for port in [callee_http, caller_http] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = reqwest_free_get(port, "/v1.0/healthz")
                .await
                .map(|s| s == 204)
                .unwrap_or(false);
            if ok {
                break;
            }
            if Instant::now() > deadline {
                bail!("a {tag} sidecar did not become healthy");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(Pair {
        _callee: callee,
        _caller: caller,
        caller_http,
    })
}

/// One GET on `conn`; the status code, after reading the whole body.
async fn get(conn: &mut bench::conn::HttpConnection, path: &str) -> Result<u16> {
    use http_body_util::BodyExt;
    let req = hyper::Request::get(path)
        .header("host", "127.0.0.1")
        .body(http_body_util::Full::new(bytes::Bytes::new()))?;
    conn.sender.ready().await?;
    let resp = conn.sender.send_request(req).await?;
    let status = resp.status().as_u16();
    resp.into_body().collect().await?;
    Ok(status)
}

/// One GET on a fresh connection; the status code.
async fn reqwest_free_get(port: u16, path: &str) -> Result<u16> {
    let mut conn = bench::conn::HttpConnection::open(port).await?;
    get(&mut conn, path).await
}

async fn first_and_steady(pair: &Pair, tag: &str) -> Result<(Duration, Duration)> {
    let mut conn = bench::conn::HttpConnection::open(pair.caller_http).await?;
    let path = format!("/v1.0/invoke/{tag}-callee/method/x");
    let t = Instant::now();
    let status = get(&mut conn, &path).await?;
    let first = t.elapsed();
    if status != 200 {
        bail!("{tag}: first call answered {status}");
    }
    let mut samples = Vec::with_capacity(500);
    for _ in 0..500 {
        let t = Instant::now();
        get(&mut conn, &path).await?;
        samples.push(t.elapsed());
    }
    samples.sort();
    Ok((first, samples[samples.len() / 2]))
}

fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let (signed, baseline) = in_process(args.csrs)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let grpc = runtime.block_on(over_grpc(&args.sentry, args.seconds))?;
    let (plain, mtls) = runtime.block_on(async {
        let dir = tempfile::tempdir()?;
        let (_sentry, port, ca) = start_sentry(&args.sentry, dir.path()).await?;
        let plain_pair = start_pair(&args.daprd, dir.path(), "plain", None).await?;
        let plain = first_and_steady(&plain_pair, "plain").await?;
        let mtls_pair = start_pair(&args.daprd, dir.path(), "mtls", Some((port, &ca))).await?;
        let mtls = first_and_steady(&mtls_pair, "mtls").await?;
        Ok::<_, anyhow::Error>((plain, mtls))
    })?;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("sentry-bench on {} cores", threads());
    println!();
    println!("| signing | certificates/s |");
    println!("|---|---|");
    println!("| baseline: 1 P-256 verify + 1 P-256 sign (ring) | {baseline:.0} |");
    println!(
        "| Authority::sign in process (parse, verify, build, sign) | {signed:.0} ({:.2}x the baseline's cost) |",
        baseline / signed
    );
    println!("| SignCertificate over gRPC+TLS, 16 clients | {grpc:.0} |");
    println!(
        "target >= 5000/s: {}",
        if signed >= 5000.0 {
            "met in process"
        } else {
            "NOT met in process"
        }
    );
    println!();
    println!("| first call between two sidecars | first µs | steady p50 µs |");
    println!("|---|---|---|");
    println!("| plaintext | {:.0} | {:.0} |", us(plain.0), us(plain.1));
    println!("| mTLS | {:.0} | {:.0} |", us(mtls.0), us(mtls.1));
    println!(
        "mTLS adds {:.0} µs to the first call (TLS handshake with client certificates) and {:.0} µs at steady p50",
        us(mtls.0) - us(plain.0),
        us(mtls.1) - us(plain.1)
    );
    Ok(())
}
