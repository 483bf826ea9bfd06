//! The verifier: keys from the JWKS (or given), the revocation set from the
//! feed, a cache of tokens already verified, and the background tasks that
//! keep the first two current.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portcullis_token::{Claims, InvalidReason, JwkSet, KeyRing, Validator, VerifyError};
use quick_cache::sync::Cache;

use crate::error::Rejection;
use crate::revocations::{FeedPage, RevocationSet};

/// About 1 KiB an entry.
const CACHE_CAPACITY: usize = 16_384;
/// An unknown `kid` refetches the JWKS at most this often.
const UNKNOWN_KID_REFETCH: Duration = Duration::from_secs(1);
/// Bounds on how long a fetched JWKS is used before refetching.
const JWKS_MIN_AGE: Duration = Duration::from_secs(5);
const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
/// Pause after a failed fetch before the next try.
const RETRY: Duration = Duration::from_secs(1);

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Where keys and revocations come from; see [`crate::VerifierBuilder`].
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pub jwks_url: Option<String>,
    pub static_keys: Option<KeyRing>,
    pub revocations_url: Option<String>,
    pub revocations_token: Option<String>,
    pub max_staleness: Duration,
}

#[derive(Debug)]
struct Cached {
    /// Shared with every request that hits the entry, not copied.
    claims: Arc<Claims>,
    kid: String,
}

pub(crate) struct Inner {
    validator: Validator,
    http: reqwest::Client,
    sources: Sources,
    ring: RwLock<Arc<KeyRing>>,
    keys_loaded: AtomicBool,
    /// When the JWKS was last fetched (single flight through the lock).
    last_jwks_fetch: tokio::sync::Mutex<Option<Instant>>,
    revocations: RwLock<RevocationSet>,
    /// The last answer from the feed; `None` until the first snapshot.
    last_sync: Mutex<Option<Instant>>,
    cache: Cache<Box<str>, Arc<Cached>>,
}

/// Verifies Portcullis access tokens. Cheap to clone (one `Arc`); the
/// background tasks stop when the last clone is dropped.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("ready", &self.is_ready())
            .field("staleness", &self.staleness())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub(crate) fn start(validator: Validator, http: reqwest::Client, sources: Sources) -> Self {
        let ring = sources.static_keys.clone().unwrap_or_default();
        let keys_loaded = sources.static_keys.is_some();
        let inner = Arc::new(Inner {
            validator,
            http,
            ring: RwLock::new(Arc::new(ring)),
            keys_loaded: AtomicBool::new(keys_loaded),
            last_jwks_fetch: tokio::sync::Mutex::new(None),
            revocations: RwLock::new(RevocationSet::default()),
            last_sync: Mutex::new(None),
            cache: Cache::new(CACHE_CAPACITY),
            sources,
        });
        if inner.sources.jwks_url.is_some() {
            tokio::spawn(keep_keys_fresh(Arc::downgrade(&inner)));
        }
        if inner.sources.revocations_url.is_some() {
            tokio::spawn(follow_revocations(Arc::downgrade(&inner)));
        }
        Self { inner }
    }

    /// Keys loaded, and the first revocation snapshot (when following the
    /// feed). Until then every request is `503 unavailable`.
    pub fn is_ready(&self) -> bool {
        self.inner.keys_loaded.load(Ordering::Acquire)
            && (self.inner.sources.revocations_url.is_none() || self.staleness().is_some())
    }

    /// How long ago the revocations feed last answered; `None` before the
    /// first answer or when not following a feed.
    pub fn staleness(&self) -> Option<Duration> {
        lock(&self.inner.last_sync).map(|at| at.elapsed())
    }

    /// Live entries in the revocation set.
    pub fn revoked_entries(&self) -> usize {
        read(&self.inner.revocations).len()
    }

    /// Verifies `token`: signature and claims (or a cached earlier
    /// verification), then the revocation set. The claims are shared with
    /// the cache (a hit copies nothing).
    pub async fn verify(&self, token: &str) -> Result<Arc<Claims>, Rejection> {
        let inner = &self.inner;
        // Keys loaded, and (when following the feed) a snapshot that is
        // not older than allowed: one read of each.
        let keys_loaded = inner.keys_loaded.load(Ordering::Acquire);
        let feed_fresh = inner.sources.revocations_url.is_none()
            || self
                .staleness()
                .is_some_and(|age| age <= inner.sources.max_staleness);
        if !(keys_loaded && feed_fresh) {
            return Err(Rejection::Unavailable);
        }
        let now = unix_now();
        let claims = match self.cached(token, now) {
            Some(claims) => claims,
            None => self.verify_in_full(token, now).await?,
        };
        if read(&inner.revocations).is_revoked(&claims) {
            return Err(Rejection::TokenRevoked);
        }
        Ok(claims)
    }

    fn cached(&self, token: &str, now: i64) -> Option<Arc<Claims>> {
        let entry = self.inner.cache.get(token)?;
        if now < entry.claims.exp && read(&self.inner.ring).get(&entry.kid).is_some() {
            return Some(Arc::clone(&entry.claims));
        }
        self.inner.cache.remove(token);
        None
    }

    async fn verify_in_full(&self, token: &str, now: i64) -> Result<Arc<Claims>, Rejection> {
        let inner = &self.inner;
        let ring = read(&inner.ring).clone();
        let mut verified = ring.verify(token, &inner.validator, now);
        if matches!(
            verified,
            Err(VerifyError::Invalid(InvalidReason::UnknownKeyId))
        ) && inner.sources.jwks_url.is_some()
        {
            // A key rotated in since the last fetch: look once, rate-limited.
            fetch_jwks(inner, false).await;
            verified = read(&inner.ring).verify(token, &inner.validator, now);
        }
        match verified {
            Ok(claims) => {
                let claims = Arc::new(claims);
                if let Some(kid) = portcullis_token::key_id(token) {
                    let entry = Cached {
                        claims: Arc::clone(&claims),
                        kid,
                    };
                    inner.cache.insert(token.into(), Arc::new(entry));
                }
                Ok(claims)
            }
            Err(VerifyError::Expired(_)) => Err(Rejection::TokenExpired),
            Err(VerifyError::Invalid(_)) => Err(Rejection::InvalidToken),
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

fn lock<T: Copy>(mutex: &Mutex<T>) -> T {
    *mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Fetches the JWKS unless another caller is at it or (unless `forced`) it
/// was fetched within [`UNKNOWN_KID_REFETCH`]. A failed fetch keeps the last
/// good keys. Returns how long the answer may be used.
async fn fetch_jwks(inner: &Inner, forced: bool) -> Option<Duration> {
    let url = inner.sources.jwks_url.as_deref()?;
    let mut last = inner.last_jwks_fetch.lock().await;
    if !forced && last.is_some_and(|at| at.elapsed() < UNKNOWN_KID_REFETCH) {
        return None;
    }
    *last = Some(Instant::now());
    let response = inner.http.get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let max_age = max_age(response.headers());
    let jwks = JwkSet::from_json(&response.bytes().await.ok()?).ok()?;
    let ring = KeyRing::from_jwks(&jwks);
    // Keys not in the ring any more end their cached tokens at once.
    *write(&inner.ring) = Arc::new(ring);
    inner.keys_loaded.store(true, Ordering::Release);
    Some(max_age)
}

/// `Cache-Control: max-age`, kept within bounds.
fn max_age(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .filter_map(|d| d.trim().strip_prefix("max-age="))
                .find_map(|s| s.parse::<u64>().ok())
        })
        .map_or(JWKS_MIN_AGE, Duration::from_secs)
        .clamp(JWKS_MIN_AGE, JWKS_MAX_AGE)
}

/// Refetches the JWKS when its cache lifetime ends.
async fn keep_keys_fresh(inner: Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let wait = fetch_jwks(&strong, true).await.unwrap_or(RETRY);
        drop(strong);
        tokio::time::sleep(wait).await;
    }
}

/// Follows the feed: a snapshot first, then long-polls from the cursor.
/// Every answer counts as a sync; a failure waits a second and tries
/// again from the same cursor (nothing is missed: the cursor is the
/// server's promise).
async fn follow_revocations(inner: Weak<Inner>) {
    let mut cursor: Option<String> = None;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let wait_secs = (strong.sources.max_staleness.as_secs() / 2).clamp(1, 25);
        let page = poll(&strong, cursor.as_deref(), wait_secs).await;
        match page {
            Some(page) => {
                let kids = {
                    let mut set = write(&strong.revocations);
                    if page.reset || cursor.is_none() {
                        *set = RevocationSet::default();
                    }
                    let kids = set.apply(page.revoked);
                    set.prune(unix_now());
                    kids
                };
                if !kids.is_empty() {
                    {
                        let mut ring = (**read(&strong.ring)).clone();
                        for kid in &kids {
                            ring.remove(kid);
                        }
                        *write(&strong.ring) = Arc::new(ring);
                    }
                    fetch_jwks(&strong, true).await;
                }
                *strong.last_sync.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                // With `more`, the next poll answers at once with the rest.
                cursor = Some(page.cursor);
            }
            None => {
                drop(strong);
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

async fn poll(inner: &Inner, cursor: Option<&str>, wait_secs: u64) -> Option<FeedPage> {
    let url = inner.sources.revocations_url.as_deref()?;
    let url = match cursor {
        Some(cursor) => format!("{url}?since={}&wait={wait_secs}", encode(cursor)),
        None => format!("{url}?limit=10000"),
    };
    let mut request = inner
        .http
        .get(url)
        .timeout(Duration::from_secs(wait_secs + 10));
    if let Some(token) = &inner.sources.revocations_token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    serde_json::from_slice(&response.bytes().await.ok()?).ok()
}

/// Percent-encodes all but RFC 3986's unreserved characters (the cursor is
/// opaque).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_lifetime_follows_cache_control_within_bounds() {
        let headers = |value: &str| {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(
                reqwest::header::CACHE_CONTROL,
                value.parse().expect("header"),
            );
            headers
        };
        assert_eq!(
            max_age(&headers("public, max-age=300")),
            Duration::from_secs(300)
        );
        assert_eq!(max_age(&headers("max-age=0")), JWKS_MIN_AGE);
        assert_eq!(max_age(&headers("max-age=99999999")), JWKS_MAX_AGE);
        assert_eq!(max_age(&headers("no-cache")), JWKS_MIN_AGE);
        assert_eq!(max_age(&reqwest::header::HeaderMap::new()), JWKS_MIN_AGE);
        assert_eq!(encode("e1-42"), "e1-42");
        assert_eq!(encode("a b&c"), "a%20b%26c");
    }
}
