//! Lock-out state in the database, so it holds on every instance: an
//! (account, address) pair is locked after `LOCKOUT_THRESHOLD` failures in a
//! row, and an account failing `ACCOUNT_FAILURE_LIMIT` times within its
//! period from anywhere is slowed to one attempt a minute.

use std::time::Duration;

use time::OffsetDateTime;

use super::{Auth, AuthError};
use crate::store::{FailureRecord, Store};

/// The key failures of an account are counted under: a digest of the
/// e-mail as typed (normalised), so unknown addresses count like real ones
/// while the table never holds the addresses people typed.
pub fn account_key(email: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, email.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The address of the account-wide row.
const ANY_ADDRESS: &str = "";
/// A slowed-down account gets one attempt per this.
const SLOW_INTERVAL: Duration = Duration::from_secs(60);

fn until(at: OffsetDateTime, later: OffsetDateTime) -> Duration {
    Duration::try_from(later - at).unwrap_or_default()
}

impl<S: Store> Auth<S> {
    /// How long the pair (or the whole account) must still wait; `None` when
    /// an attempt may go ahead. An allowed attempt of a slowed-down account
    /// uses up its minute.
    pub(crate) async fn lockout_wait(
        &self,
        account: &str,
        address: &str,
        at: OffsetDateTime,
    ) -> Result<Option<Duration>, AuthError> {
        let pair = self.store.login_failures(account, address).await?;
        if let Some(locked_until) = pair.and_then(|p| p.locked_until).filter(|t| *t > at) {
            return Ok(Some(until(at, locked_until)));
        }
        let Some(mut whole) = self.store.login_failures(account, ANY_ADDRESS).await? else {
            return Ok(None);
        };
        let in_window = at < whole.window_start + self.limits.account_failures.period;
        if !in_window || whole.failures < i64::from(self.limits.account_failures.count) {
            return Ok(None);
        }
        let next = whole.last_attempt + SLOW_INTERVAL;
        if at < next {
            return Ok(Some(until(at, next)));
        }
        whole.last_attempt = at;
        self.store
            .put_login_failures(account, ANY_ADDRESS, &whole)
            .await?;
        Ok(None)
    }

    /// Whether any lock-out of the account is active (for administrators):
    /// a locked pair anywhere, or the account-wide slow-down.
    pub(crate) async fn lockout_wait_readonly(
        &self,
        account: &str,
        at: OffsetDateTime,
    ) -> Result<bool, AuthError> {
        if self.store.locked_pairs(account, at).await? > 0 {
            return Ok(true);
        }
        Ok(self
            .store
            .login_failures(account, ANY_ADDRESS)
            .await?
            .is_some_and(|w| {
                at < w.window_start + self.limits.account_failures.period
                    && w.failures >= i64::from(self.limits.account_failures.count)
            }))
    }

    /// Counts a failure for the pair and for the account.
    pub(crate) async fn count_failure(
        &self,
        account: &str,
        address: &str,
        at: OffsetDateTime,
    ) -> Result<(), AuthError> {
        let pair = self.store.login_failures(account, address).await?;
        let failures = pair
            .filter(|p| p.locked_until.is_none_or(|t| t <= at))
            .map_or(0, |p| p.failures)
            + 1;
        let locks = failures >= i64::from(self.limits.lockout_threshold);
        let record = FailureRecord {
            failures: if locks { 0 } else { failures },
            window_start: at,
            locked_until: locks.then(|| at + self.limits.lockout_duration),
            last_attempt: at,
        };
        self.store
            .put_login_failures(account, address, &record)
            .await?;
        if locks {
            tracing::warn!(target: "audit", event = "lockout", ip = address);
        }

        let period = self.limits.account_failures.period;
        let whole = match self.store.login_failures(account, ANY_ADDRESS).await? {
            Some(w) if at < w.window_start + period => FailureRecord {
                failures: w.failures + 1,
                last_attempt: at,
                ..w
            },
            _ => FailureRecord {
                failures: 1,
                window_start: at,
                locked_until: None,
                last_attempt: at,
            },
        };
        self.store
            .put_login_failures(account, ANY_ADDRESS, &whole)
            .await?;
        Ok(())
    }
}
