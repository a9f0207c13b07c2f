//! The `daprd` under test as a child process: spawn on free ports, poll `/v1.0/healthz`,
//! read its resident memory and CPU time, and stop it with SIGTERM the way an orchestrator
//! would.
//!
//! Everything here is blocking on purpose: start-up is measured before the benchmark's
//! async runtime exists, so no client threads compete with `daprd` for the two cores while
//! it starts.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

/// The app id state-bench gives `daprd`; Redis keys are stored as `<app id>||<key>`.
pub const APP_ID: &str = "bench";
/// Name of the state store, both in the Redis component and in the embedded default.
pub const STORE: &str = "statestore";

/// Gap between health probes: fine enough for start-up times of a few milliseconds,
/// coarse enough not to steal CPU from the starting sidecar.
const POLL_INTERVAL: Duration = Duration::from_millis(1);
/// `daprd` waits up to its graceful-shutdown period (5 s by default) before exiting.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The status line of a healthy `/v1.0/healthz` answer.
const HEALTHY: &[u8] = b"HTTP/1.1 204";

pub use test_support::free_ports;

/// Writes the Redis state store component into `dir` (created if missing).
pub fn write_redis_component(dir: &Path, redis_port: u16) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let yaml = format!(
        "apiVersion: dapr.io/v1alpha1\n\
         kind: Component\n\
         metadata:\n  name: {STORE}\n\
         spec:\n  type: state.redis\n  version: v1\n  metadata:\n  \
         - name: redisHost\n    value: \"127.0.0.1:{redis_port}\"\n"
    );
    let path = dir.join("statestore.yaml");
    std::fs::write(&path, yaml).with_context(|| format!("cannot write {}", path.display()))
}

/// A running `daprd`. Dropping it stops the process, so an early error return never
/// leaves a sidecar behind.
pub struct Sidecar {
    child: Child,
    pub http_port: u16,
    pub grpc_port: u16,
    log: PathBuf,
    spawned_at: Instant,
}

impl Sidecar {
    /// Starts `daprd` on fresh ports; with `resources` it loads the components there,
    /// without it the sidecar falls back to its embedded in-memory store. Its stdout and
    /// stderr go to `log`, quoted in errors when it fails to come up.
    pub fn spawn(daprd: &Path, resources: Option<&Path>, log: &Path) -> Result<Self> {
        let mut extra: Vec<&OsStr> = Vec::new();
        if let Some(dir) = resources {
            extra.extend([OsStr::new("--resources-path"), dir.as_os_str()]);
        }
        Self::spawn_with(daprd, APP_ID, extra, log)
    }

    /// Starts `daprd --app-id <app_id>` with its HTTP, gRPC and metrics ports on fresh
    /// loopback ports, followed by the `extra` arguments. Its stdout and stderr go to `log`.
    pub fn spawn_with<I, A>(daprd: &Path, app_id: &str, extra: I, log: &Path) -> Result<Self>
    where
        I: IntoIterator<Item = A>,
        A: AsRef<OsStr>,
    {
        let [http_port, grpc_port, metrics_port] = free_ports::<3>();
        let out = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(daprd);
        cmd.arg("--app-id")
            .arg(app_id)
            .arg("--dapr-http-port")
            .arg(http_port.to_string())
            .arg("--dapr-grpc-port")
            .arg(grpc_port.to_string())
            .arg("--metrics-port")
            .arg(metrics_port.to_string())
            .args(extra);
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        // The clock starts right before the fork, as `time daprd ...` would see it.
        let spawned_at = Instant::now();
        let child = cmd.spawn().with_context(|| {
            format!(
                "cannot start {} (build it with `cargo build --release -p daprd`)",
                daprd.display()
            )
        })?;
        Ok(Self {
            child,
            http_port,
            grpc_port,
            log: log.to_path_buf(),
            spawned_at,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Probes `GET /v1.0/healthz` about every millisecond and returns the time from spawn
    /// to the first 204.
    pub fn wait_healthy(&mut self, timeout: Duration) -> Result<Duration> {
        loop {
            if probe_healthz(self.http_port) {
                return Ok(self.spawned_at.elapsed());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "daprd exited ({status}) before becoming healthy; its log ends with:\n{}",
                    self.log_tail()
                );
            }
            if self.spawned_at.elapsed() > timeout {
                bail!(
                    "daprd not healthy after {timeout:?}; its log ends with:\n{}",
                    self.log_tail()
                );
            }
            sleep(POLL_INTERVAL);
        }
    }

    /// Resident set size in KiB, from `VmRSS` in `/proc/<pid>/status`.
    pub fn rss_kib(&self) -> Result<u64> {
        rss_kib(self.child.id())
    }

    /// CPU time used so far, user plus system, over all threads.
    pub fn cpu_time(&self) -> Result<Duration> {
        cpu_time(self.child.id())
    }

    /// Sends SIGTERM and waits for the exit, escalating to SIGKILL after [`STOP_TIMEOUT`].
    /// Calling it again after the process has exited just returns the status.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        // `kill(1)` rather than libc: the workspace forbids unsafe code.
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .context("cannot run kill(1)")?;
        ensure!(
            sent.success(),
            "kill -TERM {} failed: {sent}",
            self.child.id()
        );
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                eprintln!("daprd did not exit within {STOP_TIMEOUT:?} of SIGTERM; killing it");
                self.child.kill()?;
                return Ok(self.child.wait()?);
            }
            sleep(Duration::from_millis(2));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("stopping daprd (pid {}): {e:#}", self.child.id());
        }
    }
}

/// Resident set size of any process in KiB, from `VmRSS` in `/proc/<pid>/status`.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .with_context(|| format!("no VmRSS line in {path}"))?;
    let kib = line.trim().trim_end_matches("kB").trim();
    kib.parse()
        .with_context(|| format!("unexpected VmRSS value {line:?} in {path}"))
}

/// CPU time any process has used so far: `utime + stime` (all its threads) from
/// `/proc/<pid>/stat`, in clock ticks converted with `getconf CLK_TCK`. A tick is usually
/// 10 ms, fine enough over phases of seconds.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // The command name (field 2) is in parentheses and may contain spaces; fields are
    // counted after its closing parenthesis, starting with field 3 (state).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("unexpected {path}: {stat:?}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("no field {n} in {path}: {stat:?}"))
    };
    let ticks = field(14)? + field(15)?;
    Ok(Duration::from_secs_f64(
        ticks as f64 / clock_ticks_per_sec() as f64,
    ))
}

/// `sysconf(_SC_CLK_TCK)` without libc (the workspace forbids unsafe code): asks
/// `getconf` once; Linux's USER_HZ is 100 on every common architecture if that fails.
fn clock_ticks_per_sec() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// One raw HTTP/1.1 request on a fresh connection: a client library would add its own
/// start-up and pooling to what should be the sidecar's time alone. Any failure (refused
/// connection, 500 while initialising) just means "not healthy yet".
fn probe_healthz(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let request = format!(
        "GET /v1.0/healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; HEALTHY.len()];
    stream.read_exact(&mut head).is_ok() && head == HEALTHY
}
