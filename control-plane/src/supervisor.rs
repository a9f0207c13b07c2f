//! Background tasks under one owner. Every server and loop of a control-plane binary runs
//! as a named task; the first one that fails, or SIGTERM / Ctrl-C, stops them all through
//! one cancellation, and the binary exits with the failure (if any) instead of running on
//! half-alive.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use thiserror::Error;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What tasks watch to know the process is stopping. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    /// Resolves once shutdown has begun: the future servers take for a graceful stop.
    pub async fn wait(self) {
        self.0.cancelled_owned().await
    }

    pub fn is_stopping(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Begins shutdown, as a signal would.
    pub fn stop(&self) {
        self.0.cancel()
    }
}

/// A task's failure, as the task reported it.
pub type TaskError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Error)]
pub enum SupervisorError {
    #[error("{task} failed: {source}")]
    Failed {
        task: &'static str,
        #[source]
        source: TaskError,
    },
    #[error("{task} panicked")]
    Panicked { task: &'static str },
}

/// Owns the binary's tasks; see the module docs.
pub struct Supervisor {
    tasks: JoinSet<(&'static str, Result<(), TaskError>)>,
    names: HashMap<tokio::task::Id, &'static str>,
    shutdown: Shutdown,
    grace: Duration,
    signals: bool,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    /// A supervisor that stops on SIGTERM or Ctrl-C and gives tasks 10 seconds to finish.
    pub fn new() -> Self {
        Self {
            tasks: JoinSet::new(),
            names: HashMap::new(),
            shutdown: Shutdown::default(),
            grace: Duration::from_secs(10),
            signals: true,
        }
    }

    /// Stops only through [`Shutdown::stop`] or a failing task (tests).
    pub fn without_signals(mut self) -> Self {
        self.signals = false;
        self
    }

    /// How long tasks get to finish once shutdown began before they are aborted.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Runs `task` until it ends or shutdown aborts it. A task that returns `Ok` early is
    /// simply done; one that returns an error stops the process.
    pub fn spawn<F, E>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<TaskError>,
    {
        let handle = self
            .tasks
            .spawn(async move { (name, task.await.map_err(Into::into)) });
        // A panic loses the task's output, so its name is kept here too.
        self.names.insert(handle.id(), name);
    }

    /// Runs until a signal, a [`Shutdown::stop`] or the first failing task; then stops
    /// every task and returns the failure, if there was one.
    pub async fn run(self) -> Result<(), SupervisorError> {
        let Supervisor {
            mut tasks,
            names,
            shutdown,
            grace,
            signals,
        } = self;
        let mut failure = None;
        let signal = async {
            if signals {
                stop_signal().await;
                tracing::info!("stop signal received; shutting down");
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::pin!(signal);
        loop {
            tokio::select! {
                _ = &mut signal => break,
                _ = shutdown.0.cancelled() => break,
                joined = tasks.join_next() => match joined {
                    None => break,
                    Some(outcome) => if let Some(e) = failed(&names, outcome) {
                        tracing::error!("{e}");
                        failure = Some(e);
                        break;
                    },
                },
            }
        }
        shutdown.stop();
        let drain = async {
            while let Some(outcome) = tasks.join_next().await {
                if let Some(e) = failed(&names, outcome) {
                    tracing::warn!("while stopping: {e}");
                }
            }
        };
        if tokio::time::timeout(grace, drain).await.is_err() {
            tracing::warn!("tasks still running after {grace:?}; aborting them");
            tasks.shutdown().await;
        }
        failure.map_or(Ok(()), Err)
    }
}

fn failed(
    names: &HashMap<tokio::task::Id, &'static str>,
    outcome: Result<(&'static str, Result<(), TaskError>), tokio::task::JoinError>,
) -> Option<SupervisorError> {
    match outcome {
        Ok((_, Ok(()))) => None,
        Ok((task, Err(source))) => Some(SupervisorError::Failed { task, source }),
        Err(e) if e.is_cancelled() => None,
        Err(e) => Some(SupervisorError::Panicked {
            task: names.get(&e.id()).copied().unwrap_or("a task"),
        }),
    }
}

/// SIGTERM (what Kubernetes sends) or Ctrl-C.
pub async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn the_first_failure_stops_every_task_and_is_returned() {
        let mut supervisor = Supervisor::new().without_signals();
        let stopped = Arc::new(AtomicBool::new(false));
        let shutdown = supervisor.shutdown();
        let flag = stopped.clone();
        supervisor.spawn("server", async move {
            shutdown.wait().await;
            flag.store(true, Ordering::SeqCst);
            Ok::<_, std::io::Error>(())
        });
        supervisor.spawn("done early", async { Ok::<_, std::io::Error>(()) });
        supervisor.spawn("watcher", async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err(std::io::Error::other("lost the API server"))
        });
        let err = supervisor.run().await.expect_err("the watcher failed");
        assert_eq!(err.to_string(), "watcher failed: lost the API server");
        assert!(
            stopped.load(Ordering::SeqCst),
            "the server saw the shutdown"
        );
    }

    #[tokio::test]
    async fn stop_ends_cleanly_and_aborts_tasks_that_ignore_it() {
        let supervisor = Supervisor::new()
            .without_signals()
            .with_grace(Duration::from_millis(50));
        let mut supervisor = supervisor;
        supervisor.spawn("stubborn", async {
            std::future::pending::<()>().await;
            Ok::<_, std::io::Error>(())
        });
        let shutdown = supervisor.shutdown();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            shutdown.stop();
        });
        let started = std::time::Instant::now();
        supervisor
            .run()
            .await
            .expect("a requested stop is not a failure");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_panicking_task_is_a_failure() {
        let mut supervisor = Supervisor::new().without_signals();
        supervisor.spawn("buggy", async {
            if std::hint::black_box(true) {
                panic!("bug");
            }
            Ok::<_, std::io::Error>(())
        });
        let err = supervisor.run().await.expect_err("a panic fails the run");
        assert_eq!(err.to_string(), "buggy panicked");
    }
}
