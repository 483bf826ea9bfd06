//! The two database steps of a refresh, batched across concurrent
//! refreshes (see [`super::batch`]): looking the tokens up, and storing the
//! rotations.

use crate::store::{RefreshContext, Rotation, Store, StoreError};

use super::batch::Batch;

/// Reads refresh tokens with their session and user, one query a batch.
#[derive(Debug)]
pub struct Lookups<S>(pub S);

impl<S: Store> Batch for Lookups<S> {
    type Job = Vec<u8>;
    type Answer = Option<RefreshContext>;

    async fn run(&self, hashes: Vec<Vec<u8>>) -> Vec<Option<Option<RefreshContext>>> {
        match self.0.refresh_contexts(&hashes).await {
            // Each job takes its own row (one per hash asked, duplicates
            // included), so none is cloned.
            Ok(mut found) => hashes
                .iter()
                .map(|hash| {
                    let at = found.iter().position(|c| &c.token.hash == hash);
                    Some(at.map(|at| found.swap_remove(at)))
                })
                .collect(),
            Err(e) => failed(&e, hashes.len()),
        }
    }
}

/// Stores rotations, one transaction a batch.
#[derive(Debug)]
pub struct Rotations<S>(pub S);

impl<S: Store> Batch for Rotations<S> {
    type Job = Rotation;
    /// Whether the rotation spent its token (`false`: already spent).
    type Answer = bool;

    async fn run(&self, rotations: Vec<Rotation>) -> Vec<Option<bool>> {
        match self.0.rotate_all(&rotations).await {
            Ok(won) => won.into_iter().map(Some).collect(),
            Err(e) if rotations.len() == 1 => failed(&e, 1),
            // One bad rotation (its session deleted meanwhile, say) must
            // not fail the others: retry them one by one.
            Err(e) => {
                tracing::debug!(error = %e, batch = rotations.len(), "a rotation batch failed; retrying each alone");
                let mut answers = Vec::with_capacity(rotations.len());
                for rotation in &rotations {
                    answers.push(
                        match self.0.rotate_all(std::slice::from_ref(rotation)).await {
                            Ok(won) => won.first().copied(),
                            Err(e) => {
                                log_failure(&e, 1);
                                None
                            }
                        },
                    );
                }
                answers
            }
        }
    }
}

fn log_failure(e: &StoreError, jobs: usize) {
    tracing::error!(error = %e, jobs, "a refresh batch failed in the store");
}

/// No answer for any of `jobs`.
fn failed<T>(e: &StoreError, jobs: usize) -> Vec<Option<T>> {
    log_failure(e, jobs);
    std::iter::repeat_with(|| None).take(jobs).collect()
}
