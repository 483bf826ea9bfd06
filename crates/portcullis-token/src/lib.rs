//! The JOSE core of Portcullis: keys, key rings, signing, strict access-token
//! verification and JWKS.
//!
//! Everything in Portcullis that knows what a JWT is lives here. The public
//! API is deliberately narrow and exposes no type of the JOSE library it is
//! built on, so that library can change without touching any caller.
//!
//! What "strict" means (API.md, Tokens): the `alg` must be the one pinned to
//! the key named by `kid` (never `none`, never HMAC with a public key);
//! tokens over 8 KiB are refused before decoding; `crit` is refused; `jku`,
//! `x5u`, `jwk` and `x5c` are never followed; `typ` must be `at+jwt`;
//! `exp iat sub iss aud jti sid` are required; `exp`, `nbf` and `iat` are
//! checked against a clock the caller passes in, with 60 s leeway.
//!
//! ```
//! use portcullis_token::{Algorithm, Audience, Claims, KeyRing, SigningKey, Validator, VerifyError};
//!
//! let ring = KeyRing::with_signing_key(SigningKey::generate(Algorithm::EdDSA)?);
//! let now = 1_700_000_000;
//! let claims = Claims {
//!     iss: "portcullis".into(),
//!     sub: "0190c3a4-7f5e-7b7a-9d1e-2f1d0c9b8a76".into(),
//!     aud: Audience::from("portcullis"),
//!     exp: now + 900,
//!     iat: now,
//!     nbf: Some(now),
//!     jti: "4d3c2b1a-0000-4000-8000-000000000001".into(),
//!     sid: "4d3c2b1a-0000-4000-8000-000000000002".into(),
//!     email: "ada@example.com".into(),
//!     name: "Ada".into(),
//!     roles: vec!["user".into()],
//! };
//! let token = ring.sign(&claims)?;
//!
//! let validator = Validator::new("portcullis", "portcullis");
//! assert_eq!(ring.verify(&token, &validator, now + 10)?, claims);
//! assert!(matches!(
//!     ring.verify(&token, &validator, now + 900 + 60),
//!     Err(VerifyError::Expired(_))
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod algorithm;
mod claims;
mod encoding;
mod error;
mod jwk;
mod key;
mod keyring;
mod verify;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use claims::{Audience, Claims};
pub use error::{KeyError, SignError};
pub use jwk::{Jwk, JwkSet};
pub use key::{SigningKey, VerifyingKey};
pub use keyring::{KeyRing, key_id};
pub use verify::{DEFAULT_LEEWAY, InvalidReason, MAX_TOKEN_LEN, Validator, VerifyError};
