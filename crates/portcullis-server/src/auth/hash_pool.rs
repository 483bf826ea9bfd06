//! The threads that hash passwords: their own, at the lowest scheduling
//! priority (nice 19). On a busy core the scheduler then runs every other
//! request first and a login flood no longer lands in the tail latency of
//! the rest of the API; on an idle core a hash still gets all of it, since
//! niceness only matters between threads that compete.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

/// The lowest priority Linux offers an unprivileged thread.
const NICENESS: i32 = 19;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug)]
pub struct HashPool {
    jobs: mpsc::Sender<Job>,
}

/// The job panicked, or the pool has shut down.
#[derive(Debug, thiserror::Error)]
#[error("the password hashing thread failed")]
pub struct HashThreadFailed;

impl HashPool {
    /// Starts `workers` threads; they end when the pool is dropped.
    pub fn new(workers: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..workers.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{n}"))
                .spawn(move || work(&queue))?;
        }
        Ok(Self { jobs })
    }

    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashThreadFailed> {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move || {
            // A panic drops `answer`, which the caller sees as a failure.
            if let Ok(result) = std::panic::catch_unwind(AssertUnwindSafe(work)) {
                let _ = answer.send(result);
            }
        });
        self.jobs.send(job).map_err(|_| HashThreadFailed)?;
        answered.await.map_err(|_| HashThreadFailed)
    }
}

/// CPU time the calling thread has used so far.
pub fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    // On Linux, setpriority on the calling "process" changes only the
    // calling thread.
    if let Err(e) = rustix::process::setpriority_process(None, NICENESS) {
        tracing::warn!(error = %e, "cannot lower the priority of a password hashing thread");
    }
    loop {
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match next {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_lowered_threads_and_a_panic_is_an_error() {
        let pool = HashPool::new(2).expect("threads");
        let (name, niceness) = pool
            .run(|| {
                let name = std::thread::current().name().map(str::to_owned);
                (name, rustix::process::getpriority_process(None).ok())
            })
            .await
            .expect("ran");
        assert!(name.is_some_and(|n| n.starts_with("password-hash-")));
        assert_eq!(niceness, Some(NICENESS));
        assert!(pool.run(|| panic!("boom")).await.is_err());
        assert_eq!(pool.run(|| 7).await.expect("the pool survives a panic"), 7);
    }
}
