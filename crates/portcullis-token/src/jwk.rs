//! JSON Web Keys (RFC 7517) as Portcullis publishes and consumes them.
//!
//! The types carry public members only: there is no field for `d`, `p`, `q`
//! or `k`, so serialising a [`Jwk`] can never leak a private or symmetric key,
//! and parsing one ignores any private member it carries.

use aws_lc_rs::digest;
use serde::{Deserialize, Deserializer, Serialize};

use crate::encoding::b64_encode;

/// One public JSON Web Key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `OKP` (Ed25519), `EC` (P-256) or `RSA`.
    pub kty: String,
    /// Curve of `OKP` and `EC` keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// Public point (OKP, EC), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// Second coordinate (EC), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Key id; Portcullis uses the RFC 7638 thumbprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The one algorithm this key is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Intended use; Portcullis publishes `sig` and accepts only `sig` or none.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
}

impl Jwk {
    /// The RFC 7638 SHA-256 thumbprint, base64url: a key id that anyone can
    /// recompute from the public key alone. `None` when a required member for
    /// the key type is missing or the type is unknown.
    pub fn thumbprint(&self) -> Option<String> {
        // Members in lexicographic order, no whitespace (RFC 7638 §3.2). The
        // values are base64url or fixed names, so no JSON escaping can apply;
        // serde_json still writes them to be safe against odd input.
        let s = |v: &str| serde_json::Value::from(v).to_string();
        let canonical = match self.kty.as_str() {
            "OKP" => format!(
                r#"{{"crv":{},"kty":"OKP","x":{}}}"#,
                s(self.crv.as_deref()?),
                s(self.x.as_deref()?)
            ),
            "EC" => format!(
                r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
                s(self.crv.as_deref()?),
                s(self.x.as_deref()?),
                s(self.y.as_deref()?)
            ),
            "RSA" => format!(
                r#"{{"e":{},"kty":"RSA","n":{}}}"#,
                s(self.e.as_deref()?),
                s(self.n.as_deref()?)
            ),
            _ => return None,
        };
        Some(b64_encode(digest::digest(
            &digest::SHA256,
            canonical.as_bytes(),
        )))
    }
}

/// A JWK Set (RFC 7517 §5), as served at `/.well-known/jwks.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys. When parsing, members that are not JWK objects of a shape
    /// this crate understands are skipped rather than failing the whole set:
    /// a provider may publish encryption keys or new key types beside ours.
    #[serde(deserialize_with = "lenient_keys")]
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// Parses a JWKS document fetched from elsewhere. Fails only when the
    /// document is not a JSON object with a `keys` array.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The key with this `kid`, if any.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }
}

fn lenient_keys<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Jwk>, D::Error> {
    let values = Vec::<serde_json::Value>::deserialize(deserializer)?;
    Ok(values
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1: the worked example and its published thumbprint.
    #[test]
    fn rfc7638_thumbprint() {
        let jwk: Jwk = serde_json::from_str(
            r#"{
              "kty": "RSA",
              "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
              "e": "AQAB",
              "alg": "RS256",
              "kid": "2011-04-29"
            }"#,
        )
        .expect("RFC 7638 example parses");
        assert_eq!(
            jwk.thumbprint().as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn private_members_are_dropped_on_parse_and_never_written() {
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                "d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}"#,
        )
        .expect("parses");
        let written = serde_json::to_string(&jwk).expect("serialises");
        assert!(!written.contains("\"d\""), "{written}");
    }

    #[test]
    fn set_skips_keys_it_cannot_read() {
        let set = JwkSet::from_json(
            br#"{"keys":[{"kty":5},"junk",{"kty":"OKP","crv":"Ed25519","x":"abc","kid":"k1"}]}"#,
        )
        .expect("parses");
        assert_eq!(set.keys.len(), 1);
        assert!(set.find("k1").is_some());
        assert!(JwkSet::from_json(b"[]").is_err());
    }
}
