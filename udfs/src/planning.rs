//! Work that table functions do while their query is planned (`kmeans_fit` fits,
//! `near_duplicates` groups, `samplemix_weights` aggregates): one runtime per call, under the
//! statement's time limit.
//!
//! DataFusion plans table functions synchronously, but these must run queries before they know
//! their output. Blocking the caller's runtime would panic on a current-thread runtime, so each
//! call runs its whole async work on one fresh runtime on one helper thread. The work obeys
//! the session's memory pool like any query (it runs through the same session) and the
//! statement's [`StatementDeadline`]: the shell's `--query-timeout` cannot interrupt a
//! synchronous planning call from outside, so the call gives up itself.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use datafusion::catalog::Session;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionState;

/// The wall-clock limit of the statement being run, shared through the session configuration
/// (an extension of [`datafusion::execution::context::SessionConfig`]): whoever runs statements
/// (the shell's `--query-timeout`) sets it, and planning-time work gives up when it passes.
#[derive(Debug, Default)]
pub struct StatementDeadline {
    at: Mutex<Option<Instant>>,
}

impl StatementDeadline {
    /// Set (or clear, with `None`) the deadline of the statement about to run.
    pub fn set(&self, at: Option<Instant>) {
        *self.at.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }

    /// The deadline, if one is set.
    pub fn get(&self) -> Option<Instant> {
        *self.at.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The deadline object of a session (a fresh, unset one when the session has none: then
    /// nothing is limited).
    pub fn of(state: &SessionState) -> Arc<StatementDeadline> {
        state
            .config()
            .get_extension::<StatementDeadline>()
            .unwrap_or_default()
    }
}

/// The planning-time work of one table function call.
pub(crate) struct Planning {
    function: &'static str,
    deadline: Option<Instant>,
    stopped: Arc<AtomicBool>,
}

impl Planning {
    /// The planning context of `function` in `session` (its deadline, if any).
    pub(crate) fn new(function: &'static str, session: &dyn Session) -> Self {
        let deadline = session
            .config()
            .get_extension::<StatementDeadline>()
            .and_then(|d| d.get());
        Self {
            function,
            deadline,
            stopped: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A flag CPU-bound work polls: true once the deadline has passed.
    pub(crate) fn stop_flag(&self) -> StopFlag {
        StopFlag {
            deadline: self.deadline,
            stopped: Arc::clone(&self.stopped),
        }
    }

    /// The error of work abandoned at the deadline.
    pub(crate) fn timed_out(function: &str) -> DataFusionError {
        DataFusionError::Execution(format!(
            "{function}: the statement ran longer than its time limit (--query-timeout) and was abandoned while {function} worked during planning"
        ))
    }

    /// Run `work` to completion on a helper thread with its own runtime, or until the
    /// deadline (then the error of [`Planning::timed_out`], and CPU-bound parts see their
    /// [`StopFlag`] raised).
    pub(crate) fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let function = self.function;
        let deadline = self.deadline;
        let stopped = Arc::clone(&self.stopped);
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let handle = std::thread::Builder::new()
            .name(format!("samplemix-{function}"))
            .stack_size(32 * 1024 * 1024)
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads)
                    .enable_all()
                    .build()?;
                let result = match deadline {
                    None => rt.block_on(work),
                    Some(at) => rt.block_on(async move {
                        match tokio::time::timeout_at(at.into(), work).await {
                            Ok(result) => result,
                            Err(_) => {
                                stopped.store(true, Ordering::Relaxed);
                                Err(Planning::timed_out(function))
                            }
                        }
                    }),
                };
                // Blocking work still running past the deadline sees its stop flag; do not
                // wait for it here.
                rt.shutdown_background();
                result
            })?;
        match handle.join() {
            Ok(result) => result,
            Err(_) => Err(crate::error::internal(
                function,
                "the planning thread panicked",
            )),
        }
    }
}

/// Polled by CPU-bound planning work (a k-means fit) to stop at the statement's deadline.
#[derive(Clone, Debug)]
pub(crate) struct StopFlag {
    deadline: Option<Instant>,
    stopped: Arc<AtomicBool>,
}

impl StopFlag {
    /// Whether the work should stop now.
    pub(crate) fn raised(&self) -> bool {
        self.stopped.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn work_past_the_deadline_is_abandoned() {
        let planning = Planning {
            function: "f",
            deadline: Some(Instant::now() + Duration::from_millis(50)),
            stopped: Arc::new(AtomicBool::new(false)),
        };
        let flag = planning.stop_flag();
        let err = planning
            .run(async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(1)
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("f: the statement ran longer than its time limit"),
            "{err}"
        );
        assert!(flag.raised());
        let free = Planning {
            function: "f",
            deadline: None,
            stopped: Arc::new(AtomicBool::new(false)),
        };
        assert_eq!(free.run(async { Ok(7) }).unwrap(), 7);
        assert!(!free.stop_flag().raised());
    }
}
