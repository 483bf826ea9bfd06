//! Password hashing: argon2id (OWASP minimum parameters) on low-priority
//! threads of its own, at most one hash per core at a time and a bounded
//! queue behind them, so a login flood is refused with 503 instead of
//! stalling every other request. bcrypt hashes imported from a Go system
//! verify and are flagged for re-hashing.

use std::sync::Arc;

use argon2::{Argon2, Params, PasswordHash, PasswordHasher};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::argon2id;
use super::hash_pool::{HashPool, thread_cpu_time};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// More hashes are waiting than `HASH_QUEUE_LIMIT` allows.
    #[error("the password hashing queue is full")]
    Busy,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub matches: bool,
    /// The stored hash is bcrypt or uses older argon2 parameters: store a
    /// fresh argon2id hash now that the password is known.
    pub needs_rehash: bool,
}

pub struct Passwords {
    threads: HashPool,
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    /// A hash of a random password, verified against when an e-mail matches
    /// no account so that the response takes the same time.
    dummy: Arc<str>,
    /// Every verification takes at least this long: the slower of an
    /// argon2id and a bcrypt (cost 10, Go's default) check, so neither an
    /// unknown e-mail nor an account still on an imported bcrypt hash can be
    /// told apart by timing.
    floor: std::time::Duration,
    argon2_time: std::time::Duration,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("free_workers", &self.running.available_permits())
            .finish_non_exhaustive()
    }
}

impl Passwords {
    /// `workers` hashes run at once (the cores); `queue_limit` more may wait.
    pub fn new(workers: usize, queue_limit: usize) -> Result<Self, PasswordError> {
        let workers = workers.max(1);
        let mut random = Zeroizing::new([0u8; 24]);
        aws_lc_rs::rand::fill(random.as_mut())
            .map_err(|_| PasswordError::Internal("random generator failed".into()))?;
        // Start-up pays for two probes only: hashing the dummy is itself an
        // argon2id run (a verification is the same computation), and the
        // bcrypt probe verifies against a fixed cost-10 hash. This thread is
        // borrowed, so the dummy takes the argon2 crate's path, whose memory
        // is freed at once, not the hashing threads' kept memory.
        let started = std::time::Instant::now();
        let dummy = Argon2::default()
            .hash_password(random.as_ref())
            .map_err(|e| PasswordError::Internal(e.to_string()))?
            .to_string();
        let argon2_time = started.elapsed();
        let started = std::time::Instant::now();
        let _ = verify_now(b"timing probe", BCRYPT_PROBE);
        let bcrypt_time = started.elapsed();
        Ok(Self {
            threads: HashPool::new(workers)
                .map_err(|e| PasswordError::Internal(format!("hashing threads: {e}")))?,
            running: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(Semaphore::new(workers + queue_limit)),
            dummy: dummy.into(),
            floor: argon2_time.max(bcrypt_time),
            argon2_time,
        })
    }

    /// One argon2id run (hashing the dummy) as measured at start, cold; the
    /// steady-state cost of a login is `portcullis_password_hash_cpu_seconds`.
    pub fn argon2_time(&self) -> std::time::Duration {
        self.argon2_time
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let password = Zeroizing::new(password.as_bytes().to_vec());
        self.run(move || hash_now(&password)).await?
    }

    /// Checks `password` against `stored`; `None` (no such account, or no
    /// password set) verifies against the dummy hash and never matches.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<Verdict, PasswordError> {
        let password = Zeroizing::new(password.as_bytes().to_vec());
        let (hash, real): (Arc<str>, bool) = match stored {
            Some(s) => (s.into(), true),
            None => (self.dummy.clone(), false),
        };
        let started = tokio::time::Instant::now();
        let verdict = self.run(move || verify_now(&password, &hash)).await?;
        tokio::time::sleep_until(started + self.floor).await;
        Ok(Verdict {
            matches: verdict.matches && real,
            needs_rehash: verdict.needs_rehash && real,
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let admitted = self.admitted.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!(crate::metrics::HASH_REFUSED).increment(1);
            PasswordError::Busy
        })?;
        let queued = Queued::enter();
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PasswordError::Internal("hashing pool closed".into()))?;
        drop(queued);
        let result = self
            .threads
            .run(move || {
                let cpu = thread_cpu_time();
                let result = work();
                metrics::histogram!(crate::metrics::HASH_CPU)
                    .record((thread_cpu_time().saturating_sub(cpu)).as_secs_f64());
                drop((running, admitted));
                result
            })
            .await
            .map_err(|e| PasswordError::Internal(e.to_string()))?;
        Ok(result)
    }
}

/// A hash waiting for a worker: counted in the queue-depth gauge while it
/// lives (also when the waiting request is dropped), its wait recorded when
/// it ends.
struct Queued(std::time::Instant);

impl Queued {
    fn enter() -> Self {
        metrics::gauge!(crate::metrics::HASH_QUEUE).increment(1.0);
        Self(std::time::Instant::now())
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::HASH_QUEUE).decrement(1.0);
        metrics::histogram!(crate::metrics::HASH_WAIT).record(self.0.elapsed().as_secs_f64());
    }
}

/// A bcrypt hash at cost 10, golang.org/x/crypto/bcrypt's default (of a
/// password nobody uses), to time one bcrypt verification at start.
const BCRYPT_PROBE: &str = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";

fn hash_now(password: &[u8]) -> Result<String, PasswordError> {
    argon2id::hash(password).map_err(|e| PasswordError::Internal(e.to_string()))
}

fn verify_now(password: &[u8], stored: &str) -> Verdict {
    const NO: Verdict = Verdict {
        matches: false,
        needs_rehash: false,
    };
    if is_bcrypt(stored) {
        // Like Go's bcrypt: only the first 72 bytes count. A match is
        // re-hashed to argon2id at once, ending the truncation.
        let matches = bcrypt::verify(password, stored).unwrap_or(false);
        return Verdict {
            matches,
            needs_rehash: matches,
        };
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return NO;
    };
    let matches = argon2id::verify(password, &parsed);
    let current = Params::default();
    let outdated = parsed.algorithm.as_str() != "argon2id"
        || Params::try_from(&parsed).map_or(true, |p| {
            p.m_cost() != current.m_cost()
                || p.t_cost() != current.t_cost()
                || p.p_cost() != current.p_cost()
        });
    Verdict {
        matches,
        needs_rehash: matches && outdated,
    }
}

/// Whether `stored` is a hash [`Passwords::verify`] understands: bcrypt as
/// Go writes it (`$2a$`, cost 4–31, 60 characters) or an argon2 PHC string.
pub fn is_importable(stored: &str) -> bool {
    if is_bcrypt(stored) {
        let cost = stored.get(4..6).and_then(|c| c.parse::<u32>().ok());
        return stored.len() == 60
            && cost.is_some_and(|c| (4..=31).contains(&c))
            && stored.as_bytes()[6] == b'$'
            && stored[7..]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'/');
    }
    PasswordHash::new(stored).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|prefix| stored.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bcrypt_probe_is_a_cost_10_hash_that_never_matches_a_probe() {
        let parts: bcrypt::HashParts = BCRYPT_PROBE.parse().expect("a bcrypt hash");
        assert_eq!(parts.get_cost(), 10, "Go's default cost");
        assert!(!verify_now(b"timing probe", BCRYPT_PROBE).matches);
    }

    #[tokio::test]
    async fn argon2id_round_trip() {
        let passwords = Passwords::new(2, 4).expect("init");
        let hash = passwords.hash("correct horse").await.expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let ok = passwords
            .verify("correct horse", Some(&hash))
            .await
            .expect("verify");
        assert_eq!(
            ok,
            Verdict {
                matches: true,
                needs_rehash: false
            }
        );
        let bad = passwords
            .verify("wrong horse", Some(&hash))
            .await
            .expect("verify");
        assert!(!bad.matches);
        let none = passwords
            .verify("correct horse", None)
            .await
            .expect("verify");
        assert!(!none.matches, "the dummy hash never matches");
    }

    #[tokio::test]
    async fn go_bcrypt_hashes_verify_and_ask_for_rehash() {
        let passwords = Passwords::new(2, 4).expect("init");
        // Go's bcrypt.GenerateFromPassword emits $2a$; cost 4 keeps the test fast.
        let stored = bcrypt::hash("hunter22", 4)
            .expect("bcrypt")
            .replacen("$2b$", "$2a$", 1);
        let ok = passwords
            .verify("hunter22", Some(&stored))
            .await
            .expect("verify");
        assert_eq!(
            ok,
            Verdict {
                matches: true,
                needs_rehash: true
            }
        );
        let y = stored.replacen("$2a$", "$2y$", 1);
        assert!(
            passwords
                .verify("hunter22", Some(&y))
                .await
                .expect("verify")
                .matches
        );
        assert!(
            !passwords
                .verify("hunter2", Some(&stored))
                .await
                .expect("verify")
                .matches
        );
    }

    #[tokio::test]
    async fn older_argon2_parameters_ask_for_rehash() {
        let passwords = Passwords::new(1, 1).expect("init");
        let weak = Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            Params::new(8192, 1, 1, None).expect("params"),
        )
        .hash_password(b"pw-12345")
        .expect("hash")
        .to_string();
        let verdict = passwords
            .verify("pw-12345", Some(&weak))
            .await
            .expect("verify");
        assert_eq!(
            verdict,
            Verdict {
                matches: true,
                needs_rehash: true
            }
        );
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_not_waited_on() {
        let passwords = Arc::new(Passwords::new(1, 0).expect("init"));
        let busy = passwords.clone();
        let first = tokio::spawn(async move { busy.hash("first password").await });
        // Give the first hash time to take the only slot.
        while passwords.admitted.available_permits() != 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            passwords.hash("second").await,
            Err(PasswordError::Busy)
        ));
        assert!(first.await.expect("join").is_ok());
        assert!(passwords.hash("third").await.is_ok(), "capacity comes back");
    }
}
