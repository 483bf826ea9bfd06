//! Group commit for refresh rotations. Every rotation needs the one
//! database writer; while one transaction runs, the rotations that arrive
//! queue up and then go in together — one transaction, one commit, one
//! hand-off to the database per rotation instead of five. A lone refresh
//! goes in alone, at once.

use std::sync::OnceLock;

use tokio::sync::{mpsc, oneshot};

use crate::store::{Rotation, Store};

/// The most rotations one transaction takes.
const MAX_BATCH: usize = 128;

/// Per rotation: whether its token was spent by it (`false`: already
/// spent), or `None` when storing failed.
type Reply = oneshot::Sender<Option<bool>>;

/// The queue in front of the writer. Its task starts with the first
/// rotation (so inside the runtime that serves requests) and ends when the
/// queue is dropped.
#[derive(Debug, Default)]
pub struct RotationQueue {
    jobs: OnceLock<mpsc::Sender<(Rotation, Reply)>>,
}

impl RotationQueue {
    /// Stores `rotation` with whatever else is waiting; `None` when the
    /// database failed it.
    pub async fn rotate<S: Store>(&self, store: &S, rotation: Rotation) -> Option<bool> {
        let jobs = self.jobs.get_or_init(|| {
            let (jobs, queue) = mpsc::channel(4 * MAX_BATCH);
            tokio::spawn(write_rotations(store.clone(), queue));
            jobs
        });
        let (reply, answer) = oneshot::channel();
        jobs.send((rotation, reply)).await.ok()?;
        answer.await.ok().flatten()
    }
}

/// Runs in its own task, so a request that goes away mid-way never leaves
/// the others of its batch without an answer.
async fn write_rotations<S: Store>(store: S, mut queue: mpsc::Receiver<(Rotation, Reply)>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (rotations, replies): (Vec<Rotation>, Vec<Reply>) = jobs.drain(..).unzip();
        let answers = match store.rotate_all(&rotations).await {
            Ok(won) => won.into_iter().map(Some).collect(),
            Err(e) if rotations.len() == 1 => vec![stored(Err(e))],
            // One bad rotation (its session deleted meanwhile, say) must
            // not fail the others: retry them one by one.
            Err(e) => {
                tracing::debug!(error = %e, batch = rotations.len(), "a rotation batch failed; retrying each alone");
                let mut answers = Vec::with_capacity(rotations.len());
                for rotation in &rotations {
                    answers.push(stored(
                        store.rotate_all(std::slice::from_ref(rotation)).await,
                    ));
                }
                answers
            }
        };
        for (reply, answer) in replies.into_iter().zip(answers) {
            let _ = reply.send(answer);
        }
    }
}

fn stored(won: Result<Vec<bool>, crate::store::StoreError>) -> Option<bool> {
    match won {
        Ok(won) => won.first().copied(),
        Err(e) => {
            tracing::error!(error = %e, "storing a refresh rotation failed");
            None
        }
    }
}
