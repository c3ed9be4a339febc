//! The one thread that runs the agent's database work, in order: the actors'
//! closures, the control requests, and the link probe's few sysfs reads.
//!
//! redb has one writer at a time, so database closures gain nothing from
//! running in parallel; on the blocking pool a burst of them (every actor
//! reads the store when it starts) spawned a pool thread each, and every such
//! thread kept its stack and its own malloc arena resident.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

/// Handle to the database thread, started on first use; clones share it. The
/// thread ends when the last handle is dropped and the queued jobs are done.
#[derive(Debug, Default, Clone)]
pub struct DbThread {
    jobs: Arc<OnceLock<Option<mpsc::Sender<Job>>>>,
}

impl DbThread {
    /// Runs `job` on the thread; `Err` if the job panicked or the thread could
    /// not be started.
    pub async fn run<T, F>(&self, job: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(job());
        });
        let jobs = self
            .jobs
            .get_or_init(start)
            .as_ref()
            .ok_or("cannot start the database thread")?;
        jobs.send(job)
            .map_err(|_| "the database thread has stopped")?;
        rx.await.map_err(|_| "database task panicked".to_owned())
    }
}

fn start() -> Option<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    let spawned = std::thread::Builder::new()
        .name("dmagent-db".into())
        .spawn(move || {
            for job in rx {
                // A panicking job drops its result sender: its caller gets an
                // error and the thread serves the next job.
                let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            tracing::error!("cannot start the database thread: {e}");
            None
        }
    }
}
