//! Access tokens this instance has already verified in full, so a token
//! presented again costs a lookup instead of a signature check (an EdDSA
//! verify is tens of microseconds; a gateway asks for every request).
//!
//! A hit is only as good as a fresh verification: it is exact (the whole
//! token string is the key, so nothing unsigned can match), it ends at the
//! token's `exp` without leeway (past that the full check decides), and it
//! needs the token's key still in the ring (a revoked or retired key ends
//! its tokens' entries). Revocation is checked by the caller on every
//! answer, cached or not. Bounded by capacity; entries that fail a check are
//! dropped.

use std::sync::Arc;

use portcullis_token::{Claims, KeyRing};
use quick_cache::sync::Cache;

/// About 1 KiB an entry (the token and its claims).
const CAPACITY: usize = 16_384;

/// The claims are shared with every request that hits the entry: a hit
/// hands out a reference count, not a copy of a dozen strings.
#[derive(Debug)]
struct Entry {
    claims: Arc<Claims>,
    kid: String,
}

pub struct VerifiedTokens {
    cache: Cache<Box<str>, Arc<Entry>>,
}

impl std::fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedTokens")
            .field("len", &self.cache.len())
            .finish()
    }
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        Self {
            cache: Cache::new(CAPACITY),
        }
    }
}

impl VerifiedTokens {
    /// The claims of `token` if it was verified before, has not expired at
    /// `now`, and its key is still in `ring`.
    pub fn get(&self, token: &str, now: i64, ring: &KeyRing) -> Option<Arc<Claims>> {
        let entry = self.cache.get(token)?;
        if now < entry.claims.exp && ring.get(&entry.kid).is_some() {
            crate::metrics::CACHE_HIT_COUNT.increment(1);
            return Some(Arc::clone(&entry.claims));
        }
        self.cache.remove(token);
        None
    }

    /// Remembers a token that just passed full verification.
    pub fn insert(&self, token: &str, claims: &Arc<Claims>) {
        if let Some(kid) = portcullis_token::key_id(token) {
            let entry = Entry {
                claims: Arc::clone(claims),
                kid,
            };
            self.cache.insert(token.into(), Arc::new(entry));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_token::{Algorithm, SigningKey, Validator};

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: "iss".into(),
            sub: "user".into(),
            aud: portcullis_token::Audience::from("aud"),
            exp,
            iat: 0,
            nbf: None,
            jti: "jti".into(),
            sid: "sid".into(),
            email: "a@example.com".into(),
            name: "A".into(),
            roles: vec!["user".into()],
        }
    }

    #[test]
    fn a_hit_needs_an_unexpired_token_and_its_key() {
        let key = SigningKey::generate(Algorithm::EdDSA).expect("key");
        let ring = KeyRing::with_signing_key(key);
        let token = ring.sign(&claims(100)).expect("sign");
        let verified = Arc::new(
            ring.verify(&token, &Validator::new("iss", "aud"), 50)
                .expect("verify"),
        );
        let cache = VerifiedTokens::default();
        cache.insert(&token, &verified);
        assert_eq!(cache.get(&token, 99, &ring), Some(verified.clone()));
        assert_eq!(cache.get(&format!("{token}x"), 99, &ring), None);
        // Expired: gone, and stays gone.
        assert_eq!(cache.get(&token, 100, &ring), None);
        assert_eq!(cache.get(&token, 50, &ring), None);
        // Its key left the ring.
        cache.insert(&token, &verified);
        assert_eq!(cache.get(&token, 50, &KeyRing::new()), None);
    }
}
