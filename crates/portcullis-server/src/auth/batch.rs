//! Group commit. Some work needs the one database writer; while it is busy,
//! the jobs that arrive queue up and then go in together, so many requests
//! share one hand-off to the database thread (and one commit) instead of
//! each paying for its own. A lone job goes in alone, at once.

use std::future::Future;
use std::sync::OnceLock;

use tokio::sync::{mpsc, oneshot};

/// The most jobs one batch takes.
const MAX_BATCH: usize = 128;

/// One kind of batched work.
pub trait Batch: Send + Sync + 'static {
    type Job: Send + 'static;
    /// Per job; `None` when the database failed it.
    type Answer: Send + 'static;

    /// One answer per job, in order.
    fn run(&self, jobs: Vec<Self::Job>) -> impl Future<Output = Vec<Option<Self::Answer>>> + Send;
}

type Reply<B> = oneshot::Sender<Option<<B as Batch>::Answer>>;

/// The queue in front of a [`Batch`]. Its task starts with the first job
/// (so inside the runtime that serves requests) and ends when the queue is
/// dropped.
pub struct Batcher<B: Batch> {
    jobs: OnceLock<mpsc::Sender<(B::Job, Reply<B>)>>,
}

impl<B: Batch> Default for Batcher<B> {
    fn default() -> Self {
        Self {
            jobs: OnceLock::new(),
        }
    }
}

impl<B: Batch> std::fmt::Debug for Batcher<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("started", &self.jobs.get().is_some())
            .finish()
    }
}

impl<B: Batch> Batcher<B> {
    /// Runs `job` with whatever else is waiting; `None` when the database
    /// failed it. `start` makes the batch runner on first use.
    pub async fn submit(&self, job: B::Job, start: impl FnOnce() -> B) -> Option<B::Answer> {
        let jobs = self.jobs.get_or_init(|| {
            let (jobs, queue) = mpsc::channel(4 * MAX_BATCH);
            tokio::spawn(drain(start(), queue));
            jobs
        });
        let (reply, answer) = oneshot::channel();
        jobs.send((job, reply)).await.ok()?;
        answer.await.ok().flatten()
    }
}

/// Runs in its own task, so a request that goes away mid-way never leaves
/// the others of its batch without an answer.
async fn drain<B: Batch>(batch: B, mut queue: mpsc::Receiver<(B::Job, Reply<B>)>) {
    let mut waiting = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut waiting, MAX_BATCH).await > 0 {
        let (jobs, replies): (Vec<_>, Vec<_>) = waiting.drain(..).unzip();
        for (reply, answer) in replies.into_iter().zip(batch.run(jobs).await) {
            let _ = reply.send(answer);
        }
    }
}
