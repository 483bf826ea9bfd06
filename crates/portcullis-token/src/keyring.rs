use std::collections::HashMap;

use crate::encoding::b64_decode;
use crate::verify::{parse_header, split};
use crate::{
    Claims, InvalidReason, JwkSet, SignError, SigningKey, Validator, VerifyError, VerifyingKey,
};

/// The keys of one issuer: at most one current signing key, plus every key
/// that still verifies (the signing key's own public half, rotated-out keys,
/// the next key, an HS256 previous secret), found by `kid`.
///
/// A ring is a value: build a new one when keys change and swap it in (e.g.
/// behind an `Arc`), so a verification never sees a half-updated set.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    signing: Option<SigningKey>,
    verifying: HashMap<String, VerifyingKey>,
}

impl KeyRing {
    /// An empty ring: signs nothing, verifies nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// A ring that signs with `key` and verifies its tokens.
    pub fn with_signing_key(key: SigningKey) -> Self {
        let mut ring = Self::new();
        ring.set_signing_key(key);
        ring
    }

    /// A verify-only ring from the usable keys of a JWKS. Keys this crate
    /// cannot use (symmetric, encryption, unknown types) are skipped, and when
    /// two keys share a `kid` the first one wins.
    pub fn from_jwks(jwks: &JwkSet) -> Self {
        let mut ring = Self::new();
        for key in jwks
            .keys
            .iter()
            .filter_map(|jwk| VerifyingKey::from_jwk(jwk).ok())
        {
            ring.verifying.entry(key.kid().to_owned()).or_insert(key);
        }
        ring
    }

    /// Makes `key` the signing key (its public half verifies too). The
    /// previous signing key keeps verifying until removed.
    pub fn set_signing_key(&mut self, key: SigningKey) {
        self.insert(key.verifying_key().clone());
        self.signing = Some(key);
    }

    /// Adds a verify-only key, replacing any key with the same `kid`.
    pub fn insert(&mut self, key: VerifyingKey) {
        self.verifying.insert(key.kid().to_owned(), key);
    }

    /// Removes the key with this `kid`; if it was the signing key, the ring
    /// stops signing.
    pub fn remove(&mut self, kid: &str) -> Option<VerifyingKey> {
        if self.signing.as_ref().is_some_and(|k| k.kid() == kid) {
            self.signing = None;
        }
        self.verifying.remove(kid)
    }

    /// The current signing key, if any.
    pub fn signing_key(&self) -> Option<&SigningKey> {
        self.signing.as_ref()
    }

    /// The verification key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.verifying.get(kid)
    }

    /// Every verification key, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.verifying.values()
    }

    /// The number of verification keys.
    pub fn len(&self) -> usize {
        self.verifying.len()
    }

    /// Whether the ring holds no verification key.
    pub fn is_empty(&self) -> bool {
        self.verifying.is_empty()
    }

    /// The public JWKS of this ring: every asymmetric key, sorted by `kid`
    /// for a stable document; HS256 secrets never appear.
    pub fn jwks(&self) -> JwkSet {
        let mut keys: Vec<_> = self
            .verifying
            .values()
            .filter_map(|k| k.to_jwk().cloned())
            .collect();
        keys.sort_by(|a, b| a.kid.cmp(&b.kid));
        JwkSet { keys }
    }

    /// Signs `claims` with the current signing key.
    pub fn sign(&self, claims: &Claims) -> Result<String, SignError> {
        self.signing
            .as_ref()
            .ok_or(SignError::NoSigningKey)?
            .sign(claims)
    }

    /// Verifies an access token against this ring and `validator` at `now`
    /// (Unix seconds; injected so tests and callers control the clock).
    ///
    /// Checks, in order: length, structure, `crit`, `typ`, `kid`, the `alg`
    /// pinned to that key, the signature, then the claims (required members,
    /// `iss`, `aud`, `nbf`, `iat`, and finally `exp`). The header is parsed
    /// once; claims are parsed once, and only after the signature verified.
    pub fn verify(
        &self,
        token: &str,
        validator: &Validator,
        now: i64,
    ) -> Result<Claims, VerifyError> {
        let parts = split(token)?;
        let header = parse_header(parts.header)?;
        header.check()?;
        let kid = header.kid.as_deref().ok_or(InvalidReason::MissingKeyId)?;
        let key = self.verifying.get(kid).ok_or(InvalidReason::UnknownKeyId)?;
        if header.alg.as_deref() != Some(key.algorithm().as_str()) {
            return Err(InvalidReason::AlgorithmMismatch.into());
        }
        if !key.check(parts.signing_input, parts.signature) {
            return Err(InvalidReason::BadSignature.into());
        }
        let payload = b64_decode(parts.payload).ok_or(InvalidReason::Malformed)?;
        validator.check(&payload, now)
    }
}

/// The `kid` a token's header names, read without verifying anything: for
/// callers that keep per-key state about tokens they already verified (a
/// cache that must drop a token once its key leaves the ring).
pub fn key_id(token: &str) -> Option<String> {
    let parts = crate::verify::split(token).ok()?;
    crate::verify::parse_header(parts.header).ok()?.kid
}
