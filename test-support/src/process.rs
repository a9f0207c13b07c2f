//! A child process whose output goes to a log file that outlives its exit, so a failing
//! test can show what the process said; it is killed when the handle is dropped.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Process {
    child: Option<Child>,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Process {
    /// Starts `bin` with `args` and `env` added to this process's environment, minus
    /// `DAPR_API_TOKEN` (a token in the test runner's environment must not leak in).
    pub fn spawn<S: AsRef<str>>(bin: &Path, args: &[S], env: &[(&str, &str)]) -> Self {
        Self::start(bin, args, env, false)
    }

    /// Starts `bin` with `env` as its whole environment (plus `PATH`), as a container
    /// runtime starts a container: nothing of the test runner's leaks in.
    pub fn spawn_with_only<S: AsRef<str>>(bin: &Path, args: &[S], env: &[(&str, &str)]) -> Self {
        Self::start(bin, args, env, true)
    }

    fn start<S: AsRef<str>>(bin: &Path, args: &[S], env: &[(&str, &str)], only: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut command = Command::new(bin);
        if only {
            command.env_clear();
            if let Some(path) = std::env::var_os("PATH") {
                command.env("PATH", path);
            }
        }
        let child = command
            .args(args.iter().map(AsRef::as_ref))
            .env_remove("DAPR_API_TOKEN")
            .envs(env.iter().copied())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        Self {
            child: Some(child),
            log,
            _dir: dir,
        }
    }

    /// Everything the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// The exit status, if the process has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits for the process to exit on its own.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.try_exit() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `GET url` answers `status` (a health endpoint coming up), failing the
    /// test with the log if the process exits first or `within` passes.
    pub async fn wait_answers(&mut self, url: &str, status: u16, within: Duration) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(r) = client.get(url).send().await
                && r.status() == status
            {
                return;
            }
            self.still_starting(deadline, url);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// As [`Self::wait_answers`], but a process that exits because a port it was given is
    /// taken (`address already in use`: another test bound it between our probe and its
    /// bind) is reported as `false`, for the caller to start again on fresh ports.
    pub async fn answers_unless_port_lost(
        &mut self,
        url: &str,
        status: u16,
        within: Duration,
    ) -> bool {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(r) = client.get(url).send().await
                && r.status() == status
            {
                return true;
            }
            if self.try_exit().is_some()
                && self
                    .log()
                    .to_ascii_lowercase()
                    .contains("address already in use")
            {
                return false;
            }
            self.still_starting(deadline, url);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `127.0.0.1:port` accepts connections, failing as [`Self::wait_answers`].
    pub async fn wait_listening(&mut self, port: u16, within: Duration) {
        let deadline = Instant::now() + within;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            self.still_starting(deadline, &format!("port {port}"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn still_starting(&mut self, deadline: Instant, waiting_for: &str) {
        if let Some(status) = self.try_exit() {
            panic!(
                "exited with {status} while waiting for {waiting_for}:\n{}",
                self.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{waiting_for} never answered:\n{}",
            self.log()
        );
    }

    /// Asks the process to stop, as a supervisor would.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Kills the process now (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
