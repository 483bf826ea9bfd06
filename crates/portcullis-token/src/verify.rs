//! Strict access-token validation: every rule of API.md's Tokens section.

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

use crate::Claims;
use crate::claims::RawClaims;
use crate::encoding::b64_decode;

/// Tokens longer than this are refused before any decoding (API.md: a token
/// over 8 KiB is `invalid_token`), so a huge header cannot cost CPU.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY: i64 = 60;

/// Why a token was refused.
///
/// Only [`VerifyError::Expired`] means "the token was good once": it is
/// returned only for a token that passes every other check, and carries its
/// claims so that, e.g., logout can still identify the session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Correctly signed and otherwise valid, but past `exp` + leeway.
    #[error("token expired")]
    Expired(Box<Claims>),
    /// Anything else; the reason is for logs, never for the client.
    #[error("invalid token: {0}")]
    Invalid(#[from] InvalidReason),
}

/// The precise reason a token is invalid, in the order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidReason {
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("token longer than 8 KiB")]
    TooLong,
    /// Not three base64url segments, or a header that is not a JSON object.
    #[error("malformed token")]
    Malformed,
    /// The header carries `crit`; no extension is understood, so none may be
    /// required (RFC 7515 §4.1.11).
    #[error("critical header present")]
    CriticalHeader,
    /// `typ` is missing or not `at+jwt` / `application/at+jwt` (RFC 9068), so
    /// an ID token or another JWT cannot pass as an access token.
    #[error("typ is not at+jwt")]
    WrongType,
    /// The header names no `kid`.
    #[error("missing kid")]
    MissingKeyId,
    /// No key with this `kid` is known.
    #[error("unknown kid")]
    UnknownKeyId,
    /// The header's `alg` is not the algorithm pinned to the key (this covers
    /// `none` and HMAC-with-a-public-key).
    #[error("alg does not match the key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The payload is not a JSON object of claims with the right types.
    #[error("malformed claims")]
    MalformedClaims,
    /// A required claim is absent, `null` or empty.
    #[error("missing claim {0}")]
    MissingClaim(&'static str),
    /// `iss` differs from the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not equal or contain the configured audience.
    #[error("wrong audience")]
    WrongAudience,
    /// `nbf` is later than now + leeway.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` is later than now + leeway.
    #[error("token issued in the future")]
    IssuedInFuture,
}

/// What a verifier expects of a token beyond its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validator {
    issuer: String,
    audience: String,
    leeway: i64,
}

impl Validator {
    /// Expects exactly this `iss` and an `aud` equal to or containing
    /// `audience`, with the default 60 s leeway.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: DEFAULT_LEEWAY,
        }
    }

    /// Replaces the clock-skew leeway (seconds).
    #[must_use]
    pub fn with_leeway(mut self, seconds: u32) -> Self {
        self.leeway = i64::from(seconds);
        self
    }

    /// The expected issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The expected audience.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Checks decoded, already authenticated claims against `now` (Unix
    /// seconds). Expiry is checked last so that `Expired` implies everything
    /// else holds.
    pub(crate) fn check(&self, payload: &[u8], now: i64) -> Result<Claims, VerifyError> {
        let raw: RawClaims = parse_json(payload).ok_or(InvalidReason::MalformedClaims)?;
        let exp = raw.exp.ok_or(InvalidReason::MissingClaim("exp"))?;
        let iat = raw.iat.ok_or(InvalidReason::MissingClaim("iat"))?;
        let sub = required(raw.sub, "sub")?;
        let iss = required(raw.iss, "iss")?;
        let aud = raw.aud.ok_or(InvalidReason::MissingClaim("aud"))?;
        let jti = required(raw.jti, "jti")?;
        let sid = required(raw.sid, "sid")?;
        if iss != self.issuer {
            return Err(InvalidReason::WrongIssuer.into());
        }
        if !aud.contains(&self.audience) {
            return Err(InvalidReason::WrongAudience.into());
        }
        let horizon = now.saturating_add(self.leeway);
        if raw.nbf.is_some_and(|nbf| nbf > horizon) {
            return Err(InvalidReason::NotYetValid.into());
        }
        if iat > horizon {
            return Err(InvalidReason::IssuedInFuture.into());
        }
        let claims = Claims {
            iss,
            sub,
            aud,
            exp,
            iat,
            nbf: raw.nbf,
            jti,
            sid,
            email: raw.email.unwrap_or_default(),
            name: raw.name.unwrap_or_default(),
            roles: raw.roles.unwrap_or_default(),
        };
        if now >= exp.saturating_add(self.leeway) {
            return Err(VerifyError::Expired(Box::new(claims)));
        }
        Ok(claims)
    }
}

fn required(value: Option<String>, name: &'static str) -> Result<String, InvalidReason> {
    value
        .filter(|v| !v.is_empty())
        .ok_or(InvalidReason::MissingClaim(name))
}

/// The three segments of a compact JWS.
pub(crate) struct Parts<'a> {
    pub header: &'a str,
    pub payload: &'a str,
    pub signature: &'a str,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a str,
}

pub(crate) fn split(token: &str) -> Result<Parts<'_>, InvalidReason> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(InvalidReason::TooLong);
    }
    let (signing_input, signature) = token.rsplit_once('.').ok_or(InvalidReason::Malformed)?;
    let (header, payload) = signing_input
        .split_once('.')
        .ok_or(InvalidReason::Malformed)?;
    if payload.contains('.') {
        return Err(InvalidReason::Malformed);
    }
    Ok(Parts {
        header,
        payload,
        signature,
        signing_input,
    })
}

/// The header members this crate acts on. `jku`, `x5u`, `jwk` and `x5c` are
/// deliberately not read: keys come only from the key ring.
#[derive(Deserialize)]
pub(crate) struct Header {
    pub alg: Option<String>,
    pub kid: Option<String>,
    pub typ: Option<String>,
    /// True when `crit` is present with any value, `null` included.
    #[serde(default, deserialize_with = "present")]
    pub crit: bool,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

pub(crate) fn parse_header(segment: &str) -> Result<Header, InvalidReason> {
    let bytes = b64_decode(segment).ok_or(InvalidReason::Malformed)?;
    parse_json(&bytes).ok_or(InvalidReason::Malformed)
}

/// JOSE documents are UTF-8 JSON (RFC 7515 §4, RFC 7519 §7.2). serde_json's
/// `from_slice` skips unknown members without checking their UTF-8 (found
/// by fuzzing), so the bytes are checked first: a document other parsers
/// would refuse is refused here too.
fn parse_json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Option<T> {
    serde_json::from_str(std::str::from_utf8(bytes).ok()?).ok()
}

impl Header {
    /// The header checks that need no key: `crit` and `typ`.
    pub(crate) fn check(&self) -> Result<(), InvalidReason> {
        if self.crit {
            return Err(InvalidReason::CriticalHeader);
        }
        match self.typ.as_deref() {
            Some(t) if t.eq_ignore_ascii_case("at+jwt") => Ok(()),
            Some(t) if t.eq_ignore_ascii_case("application/at+jwt") => Ok(()),
            _ => Err(InvalidReason::WrongType),
        }
    }
}
