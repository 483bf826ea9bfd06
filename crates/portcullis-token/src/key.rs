//! Signing and verifying keys, each pinned to one [`Algorithm`] and parsed
//! once: signing never re-reads PKCS#8 and verifying never re-decodes a JWK.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self as aws_sig, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
    RsaKeyPair,
};
use aws_lc_rs::{hmac, rand};
use jsonwebtoken::DecodingKey;
use zeroize::Zeroizing;

use crate::encoding::{b64_decode, b64_encode, b64_encode_into};
use crate::{Algorithm, Jwk, KeyError, SignError};

const PKCS8_LABEL: &str = "PRIVATE KEY";
const MIN_SECRET_LEN: usize = 32;
const MIN_RSA_BYTES: usize = 256;
/// Label mixed into the HS256 key id so the id is a PRF output of the secret
/// and cannot collide with any other use of an HMAC under the same secret.
const HS256_KID_LABEL: &[u8] = b"portcullis/hs256-kid/v1";

enum Signer {
    Ed25519(Ed25519KeyPair),
    EcdsaP256(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    /// Boxed: an HMAC key holds precomputed pads (over 1 KiB).
    Hmac(Box<hmac::Key>),
}

struct SigningInner {
    signer: Signer,
    verifying: VerifyingKey,
    /// `base64url(header) + "."`, fixed per key, so signing serialises only the
    /// claims.
    header_prefix: String,
}

/// A private key (or HS256 secret) that signs access tokens.
///
/// Cheap to clone: clones share one parsed key.
#[derive(Clone)]
pub struct SigningKey(Arc<SigningInner>);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.algorithm())
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh key: Ed25519, P-256, RSA-2048, or a random 32-byte
    /// HS256 secret.
    pub fn generate(alg: Algorithm) -> Result<Self, KeyError> {
        let generation = |_| KeyError::Generation;
        match alg {
            Algorithm::EdDSA => Self::from_signer(Signer::Ed25519(
                Ed25519KeyPair::generate().map_err(generation)?,
            )),
            Algorithm::ES256 => Self::from_signer(Signer::EcdsaP256(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(generation)?,
            )),
            Algorithm::RS256 => Self::from_signer(Signer::Rsa(
                RsaKeyPair::generate(KeySize::Rsa2048).map_err(generation)?,
            )),
            Algorithm::HS256 => {
                let mut secret = Zeroizing::new([0u8; MIN_SECRET_LEN]);
                rand::fill(secret.as_mut()).map_err(generation)?;
                Self::from_secret(secret.as_ref())
            }
        }
    }

    /// An HS256 key from a shared secret (its raw bytes, at least 32). The
    /// `kid` is derived from the secret by HMAC and reveals nothing about it.
    pub fn from_secret(secret: &[u8]) -> Result<Self, KeyError> {
        let verifying = VerifyingKey::from_secret(secret)?;
        Self::assemble(
            Signer::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret))),
            verifying,
        )
    }

    /// Loads an unencrypted PKCS#8 (v1 or v2) DER private key for `alg`.
    /// The key must really be of that algorithm: a P-256 key offered as
    /// `RS256` is refused.
    pub fn from_pkcs8_der(alg: Algorithm, der: &[u8]) -> Result<Self, KeyError> {
        let invalid = |_| KeyError::InvalidKey(alg);
        let signer = match alg {
            Algorithm::EdDSA => Signer::Ed25519(Ed25519KeyPair::from_pkcs8(der).map_err(invalid)?),
            Algorithm::ES256 => Signer::EcdsaP256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(invalid)?,
            ),
            Algorithm::RS256 => Signer::Rsa(RsaKeyPair::from_pkcs8(der).map_err(invalid)?),
            Algorithm::HS256 => return Err(KeyError::Symmetric),
        };
        Self::from_signer(signer)
    }

    /// Loads a PEM `PRIVATE KEY` (PKCS#8) document for `alg`.
    pub fn from_pkcs8_pem(alg: Algorithm, pem_text: &str) -> Result<Self, KeyError> {
        let der = parse_pem(pem_text, PKCS8_LABEL)?;
        Self::from_pkcs8_der(alg, &der)
    }

    /// The private key as PKCS#8 v1 DER, for storage (encrypt it at rest).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let failed = |_| KeyError::InvalidKey(self.algorithm());
        let der = match &self.0.signer {
            Signer::Ed25519(k) => k.to_pkcs8v1().map_err(failed)?.as_ref().to_vec(),
            Signer::EcdsaP256(k) => k.to_pkcs8v1().map_err(failed)?.as_ref().to_vec(),
            Signer::Rsa(k) => AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'_>>::as_der(k)
                .map_err(failed)?
                .as_ref()
                .to_vec(),
            Signer::Hmac(_) => return Err(KeyError::Symmetric),
        };
        Ok(Zeroizing::new(der))
    }

    /// The private key as a PEM `PRIVATE KEY` (PKCS#8 v1) document.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let der = self.to_pkcs8_der()?;
        Ok(Zeroizing::new(pem::encode(&pem::Pem::new(
            PKCS8_LABEL,
            der.to_vec(),
        ))))
    }

    /// The algorithm this key is pinned to.
    pub fn algorithm(&self) -> Algorithm {
        self.0.verifying.algorithm()
    }

    /// The key id placed in every token's header.
    pub fn kid(&self) -> &str {
        self.0.verifying.kid()
    }

    /// The public half (or, for HS256, the same secret) for verification.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.0.verifying
    }

    /// Signs `claims` into a compact JWS with header `alg`, `kid` and
    /// `typ: at+jwt`.
    pub fn sign(&self, claims: &crate::Claims) -> Result<String, SignError> {
        let payload = serde_json::to_vec(claims)?;
        let mut token = String::with_capacity(self.0.header_prefix.len() + payload.len() * 2 + 360);
        token.push_str(&self.0.header_prefix);
        b64_encode_into(&payload, &mut token);
        let signature = self.sign_bytes(token.as_bytes())?;
        token.push('.');
        b64_encode_into(&signature, &mut token);
        Ok(token)
    }

    fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(match &self.0.signer {
            Signer::Ed25519(k) => k.sign(message).as_ref().to_vec(),
            Signer::EcdsaP256(k) => k
                .sign(&rand::SystemRandom::new(), message)
                .map_err(|_| SignError::Crypto)?
                .as_ref()
                .to_vec(),
            Signer::Rsa(k) => {
                let mut signature = vec![0; k.public_modulus_len()];
                k.sign(
                    &aws_sig::RSA_PKCS1_SHA256,
                    &rand::SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .map_err(|_| SignError::Crypto)?;
                signature
            }
            Signer::Hmac(k) => hmac::sign(k, message).as_ref().to_vec(),
        })
    }

    fn from_signer(signer: Signer) -> Result<Self, KeyError> {
        let jwk = match &signer {
            Signer::Ed25519(k) => Jwk {
                kty: "OKP".into(),
                crv: Some("Ed25519".into()),
                x: Some(b64_encode(k.public_key().as_ref())),
                ..empty_jwk(Algorithm::EdDSA)
            },
            Signer::EcdsaP256(k) => {
                // Uncompressed SEC1 point: 0x04 || x || y, 32 bytes each.
                let point = k.public_key().as_ref();
                if point.len() != 65 || point[0] != 4 {
                    return Err(KeyError::InvalidKey(Algorithm::ES256));
                }
                Jwk {
                    kty: "EC".into(),
                    crv: Some("P-256".into()),
                    x: Some(b64_encode(&point[1..33])),
                    y: Some(b64_encode(&point[33..])),
                    ..empty_jwk(Algorithm::ES256)
                }
            }
            Signer::Rsa(k) => {
                if k.public_modulus_len() < MIN_RSA_BYTES {
                    return Err(KeyError::RsaKeyTooSmall {
                        bits: k.public_modulus_len() * 8,
                    });
                }
                let components = aws_sig::RsaPublicKeyComponents::<Vec<u8>>::from(k.public_key());
                Jwk {
                    kty: "RSA".into(),
                    n: Some(b64_encode(&components.n)),
                    e: Some(b64_encode(&components.e)),
                    ..empty_jwk(Algorithm::RS256)
                }
            }
            Signer::Hmac(_) => return Err(KeyError::Symmetric),
        };
        let verifying = VerifyingKey::from_jwk(&jwk)?;
        Self::assemble(signer, verifying)
    }

    fn assemble(signer: Signer, verifying: VerifyingKey) -> Result<Self, KeyError> {
        let header = serde_json::json!({
            "alg": verifying.algorithm().as_str(),
            "kid": verifying.kid(),
            "typ": "at+jwt",
        });
        let mut header_prefix = b64_encode(header.to_string());
        header_prefix.push('.');
        Ok(Self(Arc::new(SigningInner {
            signer,
            verifying,
            header_prefix,
        })))
    }
}

fn empty_jwk(alg: Algorithm) -> Jwk {
    Jwk {
        kty: String::new(),
        crv: None,
        x: None,
        y: None,
        n: None,
        e: None,
        kid: None,
        alg: Some(alg.as_str().into()),
        key_use: Some("sig".into()),
    }
}

fn parse_pem(text: &str, expected: &'static str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let parsed = pem::parse(text).map_err(|_| KeyError::Pem { expected })?;
    if parsed.tag() != expected {
        return Err(KeyError::Pem { expected });
    }
    Ok(Zeroizing::new(parsed.into_contents()))
}

struct VerifyingInner {
    alg: Algorithm,
    kid: String,
    decoding: DecodingKey,
    /// The public JWK; `None` for HS256, which must never be published.
    jwk: Option<Jwk>,
}

/// A key that checks signatures: a public key, or an HS256 secret.
///
/// Cheap to clone: clones share one parsed key.
#[derive(Clone)]
pub struct VerifyingKey(Arc<VerifyingInner>);

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.0.alg)
            .field("kid", &self.0.kid)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// An HS256 verification key from a shared secret of at least 32 bytes,
    /// e.g. the previous secret during a secret change.
    pub fn from_secret(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(KeyError::SecretTooShort { len: secret.len() });
        }
        let kid_key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let tag = hmac::sign(&kid_key, HS256_KID_LABEL);
        Ok(Self(Arc::new(VerifyingInner {
            alg: Algorithm::HS256,
            kid: b64_encode(&tag.as_ref()[..16]),
            decoding: DecodingKey::from_secret(secret),
            jwk: None,
        })))
    }

    /// Builds a verification key from a public JWK, e.g. one member of a JWKS
    /// fetched from an issuer.
    ///
    /// The key is pinned to its `alg`, which must fit its type (`OKP`/`Ed25519`
    /// → EdDSA, `EC`/`P-256` → ES256, `RSA` → RS256); a JWK without `alg` gets
    /// the only algorithm its type allows. Symmetric (`oct`) keys and keys
    /// whose `use` is not `sig` are refused: a symmetric key taken from a
    /// public document would let anyone mint tokens. The `kid` is the JWK's,
    /// or its RFC 7638 thumbprint when it has none.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        if jwk.key_use.as_deref().is_some_and(|u| u != "sig") {
            return Err(KeyError::UnsupportedJwk("use is not \"sig\""));
        }
        let (alg, decoding) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("OKP", Some("Ed25519")) => {
                let x = decode_member(jwk.x.as_deref())?;
                if x.len() != 32 {
                    return Err(KeyError::UnsupportedJwk("Ed25519 x must be 32 bytes"));
                }
                (Algorithm::EdDSA, DecodingKey::from_ed_der(&x))
            }
            ("EC", Some("P-256")) => {
                let x = decode_member(jwk.x.as_deref())?;
                let y = decode_member(jwk.y.as_deref())?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(KeyError::UnsupportedJwk("P-256 x and y must be 32 bytes"));
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                aws_sig::ParsedPublicKey::new(&aws_sig::ECDSA_P256_SHA256_FIXED, &point)
                    .map_err(|_| KeyError::UnsupportedJwk("not a point on P-256"))?;
                (Algorithm::ES256, DecodingKey::from_ec_der(&point))
            }
            ("RSA", None) => {
                let n = decode_member(jwk.n.as_deref())?;
                let e = decode_member(jwk.e.as_deref())?;
                let significant = n.iter().skip_while(|b| **b == 0).count();
                if significant < MIN_RSA_BYTES {
                    return Err(KeyError::RsaKeyTooSmall {
                        bits: significant * 8,
                    });
                }
                (
                    Algorithm::RS256,
                    DecodingKey::from_rsa_raw_components(&n, &e),
                )
            }
            ("oct", _) => {
                return Err(KeyError::UnsupportedJwk(
                    "symmetric keys are never taken from a JWK",
                ));
            }
            _ => return Err(KeyError::UnsupportedJwk("unsupported kty or crv")),
        };
        if jwk
            .alg
            .as_deref()
            .is_some_and(|named| named != alg.as_str())
        {
            return Err(KeyError::UnsupportedJwk("alg does not fit the key type"));
        }
        let kid = match &jwk.kid {
            Some(kid) => kid.clone(),
            None => jwk
                .thumbprint()
                .ok_or(KeyError::UnsupportedJwk("missing members"))?,
        };
        let mut published = jwk.clone();
        published.alg = Some(alg.as_str().into());
        published.key_use = Some("sig".into());
        published.kid = Some(kid.clone());
        Ok(Self(Arc::new(VerifyingInner {
            alg,
            kid,
            decoding,
            jwk: Some(published),
        })))
    }

    /// The algorithm this key is pinned to.
    pub fn algorithm(&self) -> Algorithm {
        self.0.alg
    }

    /// The key id tokens name in their header.
    pub fn kid(&self) -> &str {
        &self.0.kid
    }

    /// The public JWK with `kid`, `alg` and `use: sig`; `None` for HS256.
    pub fn to_jwk(&self) -> Option<&Jwk> {
        self.0.jwk.as_ref()
    }

    /// The signature layer alone: checks that the header's `alg` is this
    /// key's and that the signature over `header.payload` verifies, and
    /// returns the decoded payload. It checks nothing else (no `typ`, `kid` or
    /// claims); use [`crate::KeyRing::verify`] for access tokens.
    pub fn verify_signature(&self, token: &str) -> Result<Vec<u8>, crate::VerifyError> {
        use crate::InvalidReason;
        let parts = crate::verify::split(token)?;
        let header = crate::verify::parse_header(parts.header)?;
        if header.alg.as_deref() != Some(self.0.alg.as_str()) {
            return Err(InvalidReason::AlgorithmMismatch.into());
        }
        if !self.check(parts.signing_input, parts.signature) {
            return Err(InvalidReason::BadSignature.into());
        }
        b64_decode(parts.payload).ok_or_else(|| InvalidReason::Malformed.into())
    }

    /// Whether `signature` (base64url) is this key's signature over `message`.
    pub(crate) fn check(&self, message: &str, signature: &str) -> bool {
        matches!(
            jsonwebtoken::crypto::verify(
                signature,
                message.as_bytes(),
                &self.0.decoding,
                self.0.alg.to_jsonwebtoken(),
            ),
            Ok(true)
        )
    }
}

fn decode_member(value: Option<&str>) -> Result<Vec<u8>, KeyError> {
    value.and_then(b64_decode).ok_or(KeyError::UnsupportedJwk(
        "a required member is missing or not base64url",
    ))
}
