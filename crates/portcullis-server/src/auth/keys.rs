//! The server's signing keys: loaded from the store (private halves sealed
//! under the master key) or derived from `JWT_SECRET`, held as one immutable
//! [`KeyRing`] that is swapped whole when keys change.

use std::sync::{Arc, RwLock};

use portcullis_token::{Algorithm, Claims, KeyRing, SigningKey, VerifyError, VerifyingKey};
use secrecy::ExposeSecret;
use time::OffsetDateTime;

use super::secrets::{Sealer, SecretError};
use crate::config::SigningConfig;
use crate::store::{KeyRecord, Store, StoreError};

/// Sealing label of private signing keys: a subkey of its own.
pub const KEY_SEALING_LABEL: &[u8] = b"signing-keys";

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "stored signing key {kid} cannot be decrypted: is PORTCULLIS_MASTER_KEY (or master.key) the one it was created with?"
    )]
    Decrypt { kid: String },
    #[error("stored signing key {kid} is unusable: {reason}")]
    Unusable { kid: String, reason: String },
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// One stored key as an operator sees it (`keys list`).
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: String,
    pub state: &'static str,
    pub created_at: OffsetDateTime,
    pub signing_from: OffsetDateTime,
    pub retire_after: Option<OffsetDateTime>,
}

pub struct Keys {
    ring: RwLock<Arc<KeyRing>>,
    /// Since when the current signing key signs (Unix seconds); unknown
    /// (`i64::MIN`) for `JWT_SECRET`, whose age nothing records.
    signing_since: std::sync::atomic::AtomicI64,
    /// For keys kept in the database: what reloading needs. `None` under
    /// `JWT_SECRET`, whose keys never change while running.
    stored: Option<(Algorithm, Sealer)>,
    last_reload: std::sync::Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("ring", &self.ring()).finish()
    }
}

impl Keys {
    /// Loads the keys, generating and storing the first one on a fresh
    /// database (or when `JWT_ALGORITHM` names an algorithm no stored key
    /// has).
    pub async fn load<S: Store>(
        store: &S,
        signing: &SigningConfig,
        sealer: Sealer,
        now: OffsetDateTime,
    ) -> Result<Self, KeysError> {
        let (ring, since) = match signing {
            SigningConfig::Secret { current, previous } => {
                let key = SigningKey::from_secret(current.expose_secret())
                    .map_err(|e| KeysError::Generate(e.to_string()))?;
                let mut ring = KeyRing::with_signing_key(key);
                if let Some(previous) = previous {
                    ring.insert(
                        VerifyingKey::from_secret(previous.expose_secret())
                            .map_err(|e| KeysError::Generate(e.to_string()))?,
                    );
                }
                (ring, None)
            }
            SigningConfig::Stored(alg) => {
                let mut records = store.signing_keys().await?;
                let has_current = records.iter().any(|r| {
                    r.alg == alg.as_str()
                        && r.signing_from <= now
                        && r.retire_after.is_none_or(|t| t > now)
                });
                if !has_current {
                    let record = generate_record(*alg, &sealer, now)?;
                    store.insert_signing_key(&record).await?;
                    records.push(record);
                }
                ring_from_records(&records, *alg, &sealer, now)?
            }
        };
        let stored = match signing {
            SigningConfig::Stored(alg) => Some(*alg),
            SigningConfig::Secret { .. } => None,
        };
        Ok(Self {
            ring: RwLock::new(Arc::new(ring)),
            signing_since: std::sync::atomic::AtomicI64::new(unix_or_unknown(since)),
            stored: stored.map(|alg| (alg, sealer)),
            last_reload: std::sync::Mutex::new(None),
        })
    }

    /// Re-reads the keys from the database (another instance generated or
    /// rotated one). No-op for `JWT_SECRET` keys.
    pub async fn reload<S: Store>(&self, store: &S, now: OffsetDateTime) -> Result<(), KeysError> {
        let Some((alg, sealer)) = &self.stored else {
            return Ok(());
        };
        let records = store.signing_keys().await?;
        let (ring, since) = ring_from_records(&records, *alg, sealer, now)?;
        *self.ring.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ring);
        self.signing_since
            .store(unix_or_unknown(since), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Whether the keys live in the database (not `JWT_SECRET`).
    pub fn is_stored(&self) -> bool {
        self.stored.is_some()
    }

    /// Rotates in a new key of the configured algorithm; `None` under
    /// `JWT_SECRET`.
    pub async fn rotate<S: Store>(
        &self,
        store: &S,
        now: OffsetDateTime,
        immediately: bool,
        access_ttl: std::time::Duration,
    ) -> Result<Option<KeyRecord>, KeysError> {
        let Some((alg, sealer)) = &self.stored else {
            return Ok(None);
        };
        Ok(Some(
            rotate(store, *alg, sealer, now, immediately, access_ttl).await?,
        ))
    }

    /// Whether a reload for an unknown `kid` may run now: at most once a
    /// second, so a flood of forged kids cannot flood the database.
    pub fn may_reload(&self) -> bool {
        if self.stored.is_none() {
            return false;
        }
        let mut last = self.last_reload.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < std::time::Duration::from_secs(1)) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// How long the current signing key has been signing at `now`.
    pub fn signing_age(&self, now: OffsetDateTime) -> Option<i64> {
        let since = self
            .signing_since
            .load(std::sync::atomic::Ordering::Relaxed);
        (since != i64::MIN).then(|| now.unix_timestamp() - since)
    }

    /// The ring in force; cheap (an `Arc` clone).
    pub fn ring(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(ring) => ring.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, portcullis_token::SignError> {
        self.ring().sign(claims)
    }

    pub fn verify(
        &self,
        token: &str,
        validator: &portcullis_token::Validator,
        now: i64,
    ) -> Result<Claims, VerifyError> {
        self.ring().verify(token, validator, now)
    }
}

/// Verifiers may cache the JWKS this long; a rotated-in key is published at
/// least this long (plus a minute of skew) before it signs.
pub const JWKS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(300);

/// Publishes a new key of `alg` at once; it signs from `now` plus the JWKS
/// cache lifetime and a minute (or at once with `immediately`). Older keys
/// retire once the last token they can have signed has expired.
pub async fn rotate<S: Store>(
    store: &S,
    alg: Algorithm,
    sealer: &Sealer,
    now: OffsetDateTime,
    immediately: bool,
    access_ttl: std::time::Duration,
) -> Result<KeyRecord, KeysError> {
    let mut record = generate_record(alg, sealer, now)?;
    if !immediately {
        record.signing_from = now + JWKS_MAX_AGE + std::time::Duration::from_secs(60);
    }
    store.insert_signing_key(&record).await?;
    let leeway = std::time::Duration::from_secs(portcullis_token::DEFAULT_LEEWAY.unsigned_abs());
    store
        .retire_signing_keys(&record.kid, record.signing_from + access_ttl + leeway)
        .await?;
    Ok(record)
}

pub fn generate_record(
    alg: Algorithm,
    sealer: &Sealer,
    now: OffsetDateTime,
) -> Result<KeyRecord, KeysError> {
    let key = SigningKey::generate(alg).map_err(|e| KeysError::Generate(e.to_string()))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| KeysError::Generate(e.to_string()))?;
    Ok(KeyRecord {
        kid: key.kid().to_owned(),
        alg: alg.as_str().to_owned(),
        sealed_private_key: sealer.seal(key.kid().as_bytes(), &der)?,
        created_at: now,
        signing_from: now,
        retire_after: None,
    })
}

fn open_record(record: &KeyRecord, sealer: &Sealer) -> Result<SigningKey, KeysError> {
    let unusable = |reason: String| KeysError::Unusable {
        kid: record.kid.clone(),
        reason,
    };
    let alg: Algorithm = record
        .alg
        .parse()
        .map_err(|e: portcullis_token::UnknownAlgorithm| unusable(e.to_string()))?;
    let der = sealer
        .open(record.kid.as_bytes(), &record.sealed_private_key)
        .map_err(|_| KeysError::Decrypt {
            kid: record.kid.clone(),
        })?;
    let key = SigningKey::from_pkcs8_der(alg, &der).map_err(|e| unusable(e.to_string()))?;
    if key.kid() != record.kid {
        return Err(unusable("its kid does not match its key".into()));
    }
    Ok(key)
}

/// Every live key verifies; the newest key of the configured algorithm that
/// has reached its `signing_from` signs.
fn unix_or_unknown(t: Option<OffsetDateTime>) -> i64 {
    t.map_or(i64::MIN, OffsetDateTime::unix_timestamp)
}

/// The ring of the live keys, and since when its signing key signs.
fn ring_from_records(
    records: &[KeyRecord],
    alg: Algorithm,
    sealer: &Sealer,
    now: OffsetDateTime,
) -> Result<(KeyRing, Option<OffsetDateTime>), KeysError> {
    let mut ring = KeyRing::new();
    let mut signing: Option<(OffsetDateTime, SigningKey)> = None;
    for record in records
        .iter()
        .filter(|r| r.retire_after.is_none_or(|t| t > now))
    {
        let key = open_record(record, sealer)?;
        ring.insert(key.verifying_key().clone());
        let eligible = key.algorithm() == alg && record.signing_from <= now;
        if eligible
            && signing
                .as_ref()
                .is_none_or(|(from, _)| record.signing_from >= *from)
        {
            signing = Some((record.signing_from, key));
        }
    }
    let since = signing.map(|(from, key)| {
        ring.set_signing_key(key);
        from
    });
    Ok((ring, since))
}

/// Stored keys with their state, for `keys list`.
pub async fn list<S: Store>(store: &S, now: OffsetDateTime) -> Result<Vec<KeyInfo>, KeysError> {
    let records = store.signing_keys().await?;
    let current = records
        .iter()
        .filter(|r| r.signing_from <= now && r.retire_after.is_none_or(|t| t > now))
        .max_by_key(|r| r.signing_from)
        .map(|r| r.kid.clone());
    Ok(records
        .into_iter()
        .filter(|r| r.retire_after.is_none_or(|t| t > now))
        .map(|r| KeyInfo {
            state: if r.signing_from > now {
                "next"
            } else if Some(&r.kid) == current.as_ref() {
                "current"
            } else {
                "retiring"
            },
            kid: r.kid,
            alg: r.alg,
            created_at: r.created_at,
            signing_from: r.signing_from,
            retire_after: r.retire_after,
        })
        .collect())
}
