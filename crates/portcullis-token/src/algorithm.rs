use std::fmt;
use std::str::FromStr;

/// The JWS algorithms Portcullis signs and verifies with.
///
/// Deliberately a closed set: every key is pinned to exactly one of these, and
/// a token's `alg` header must name the algorithm of the key its `kid` points
/// at. `none` and every algorithm outside this list are refused everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519 signatures (RFC 8037). The default: small keys, fast, no
    /// parameter choices to get wrong.
    EdDSA,
    /// ECDSA on P-256 with SHA-256 (RFC 7518 §3.4).
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 and keys of at least 2048 bits.
    RS256,
    /// HMAC-SHA256 with a shared secret of at least 32 bytes. Every holder of
    /// the secret can mint tokens, so it suits a single service only.
    HS256,
}

impl Algorithm {
    /// The name used in the JOSE `alg` header and JWK `alg` member.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
            Self::HS256 => "HS256",
        }
    }

    /// Whether tokens of this algorithm can be checked with a public key, and
    /// so whether its keys may appear in a JWKS.
    pub const fn is_asymmetric(self) -> bool {
        !matches!(self, Self::HS256)
    }

    pub(crate) fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
            Self::HS256 => jsonwebtoken::Algorithm::HS256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Returned when a string names no algorithm Portcullis supports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported algorithm {0:?}: expected EdDSA, ES256, RS256 or HS256")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Exact, case-sensitive names as JOSE spells them: `alg` values are
    /// compared byte for byte by every other implementation too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "EdDSA" => Ok(Self::EdDSA),
            "ES256" => Ok(Self::ES256),
            "RS256" => Ok(Self::RS256),
            "HS256" => Ok(Self::HS256),
            other => Err(UnknownAlgorithm(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for alg in [
            Algorithm::EdDSA,
            Algorithm::ES256,
            Algorithm::RS256,
            Algorithm::HS256,
        ] {
            assert_eq!(alg.as_str().parse::<Algorithm>(), Ok(alg));
        }
        assert!("eddsa".parse::<Algorithm>().is_err());
        assert!("none".parse::<Algorithm>().is_err());
        assert!("HS512".parse::<Algorithm>().is_err());
    }
}
