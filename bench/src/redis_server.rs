//! The Redis both the sidecar and the direct client talk to: an existing one given by port,
//! or a private `redis-server` child without persistence, so disk writes never show up in
//! the latencies.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use bench::sidecar::free_ports;

pub struct Redis {
    pub port: u16,
    /// `None` when the server belongs to someone else and must be left running.
    child: Option<Child>,
}

impl Redis {
    /// A Redis already listening on `127.0.0.1:port`.
    pub fn external(port: u16) -> Self {
        Self { port, child: None }
    }

    /// Starts `redis-server` on a free port, its working directory and log in `dir`.
    pub fn start(redis_server: &Path, dir: &Path) -> Result<Self> {
        let [port] = free_ports::<1>();
        let log_path = dir.join("redis.log");
        let log = File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let child = Command::new(redis_server)
            .arg("--port")
            .arg(port.to_string())
            .args([
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (install redis-server, or pass --redis-port)",
                    redis_server.display()
                )
            })?;
        Ok(Self {
            port,
            child: Some(child),
        })
    }

    /// Waits until the server answers `PING`.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if ping(self.port) {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                bail!("redis-server exited ({status}) before answering PING");
            }
            if start.elapsed() > timeout {
                bail!(
                    "no Redis answering PING on 127.0.0.1:{} after {timeout:?}",
                    self.port
                );
            }
            sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            // Nothing of the private server is worth a graceful shutdown.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 5];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG"
}
