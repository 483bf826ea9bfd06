use crate::Algorithm;

/// Why a key could not be generated, loaded, exported or built from a JWK.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM text could not be parsed, or its label is not the one expected.
    #[error("not a PEM document labelled {expected:?}")]
    Pem {
        /// The PEM label that was required, e.g. `PRIVATE KEY`.
        expected: &'static str,
    },
    /// The DER bytes are not a key of the requested algorithm (wrong curve,
    /// wrong key type, malformed, or inconsistent private and public halves).
    #[error("not a valid {0} key")]
    InvalidKey(Algorithm),
    /// RSA keys below 2048 bits are refused (RFC 7518 §3.3 and NIST).
    #[error("RSA keys must have at least 2048 bits, this one has {bits}")]
    RsaKeyTooSmall {
        /// The size of the rejected modulus.
        bits: usize,
    },
    /// An HS256 secret shorter than 32 bytes (RFC 7518 §3.2 asks for at least
    /// the hash size).
    #[error("an HS256 secret needs at least 32 bytes, got {len}")]
    SecretTooShort {
        /// The length of the rejected secret in bytes.
        len: usize,
    },
    /// The operation exists only for asymmetric keys (PKCS#8 export, JWK).
    #[error("HS256 secrets have no PKCS#8 or JWK form")]
    Symmetric,
    /// A JWK that Portcullis cannot or will not verify with: unknown `kty` or
    /// `crv`, an `alg` that does not fit the key type, a symmetric key, a
    /// `use` other than `sig`, or missing members.
    #[error("unusable JWK: {0}")]
    UnsupportedJwk(&'static str),
    /// The system random generator or the crypto library failed.
    #[error("key generation failed")]
    Generation,
}

/// Why a token could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The key ring holds only verification keys.
    #[error("the key ring has no signing key")]
    NoSigningKey,
    /// The claims could not be serialised (cannot happen with [`crate::Claims`]
    /// but the serialiser is fallible).
    #[error("claims could not be serialised: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The crypto library refused to sign.
    #[error("signing failed")]
    Crypto,
}
