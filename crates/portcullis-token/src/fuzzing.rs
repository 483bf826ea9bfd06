//! The fuzz body, shared by the cargo-fuzz target (`fuzz/`) and an ordinary
//! test over a seed corpus, so the same oracle runs on every `cargo test`.
//!
//! Two ways in: the input as a token string, and the input split into a
//! header and a claims document that are signed with a known HS256 key, so
//! fuzzed claims get past the signature and reach the validator. Beyond "no
//! panic", every accepted token is re-checked against the rules with an
//! independent `serde_json::Value` reading of its header and payload.

use std::sync::OnceLock;

use aws_lc_rs::hmac;

use crate::encoding::{b64_decode, b64_encode};
use crate::{KeyRing, SigningKey, Validator, VerifyError};

/// The fixed clock of the fuzz oracle.
pub const NOW: i64 = 1_700_000_000;
/// The known HS256 secret fuzzed claims are signed with.
pub const SECRET: &[u8] = b"portcullis-fuzzing-secret-0123456789abcdef";

fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| {
        let mut ring = KeyRing::with_signing_key(
            SigningKey::from_secret(SECRET).expect("the fuzz secret is long enough"),
        );
        ring.insert(
            SigningKey::generate(crate::Algorithm::EdDSA)
                .expect("key generation works")
                .verifying_key()
                .clone(),
        );
        ring
    })
}

fn validator() -> Validator {
    Validator::new("portcullis", "portcullis")
}

/// The kid of the fuzzing HS256 key, for building seeds.
pub fn hs256_kid() -> String {
    ring()
        .signing_key()
        .map(|k| k.kid().to_owned())
        .unwrap_or_default()
}

/// Builds an HS256 token from raw header and claims bytes.
pub fn sign_raw(header: &[u8], claims: &[u8]) -> String {
    let mut token = b64_encode(header);
    token.push('.');
    token.push_str(&b64_encode(claims));
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);
    let tag = hmac::sign(&key, token.as_bytes());
    token.push('.');
    token.push_str(&b64_encode(tag.as_ref()));
    token
}

/// One fuzz iteration. Panics only when the verifier accepted something the
/// rules forbid, or itself panicked.
pub fn run(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
    // First byte picks where the header ends; the rest is header ‖ claims.
    if let Some((&cut, rest)) = data.split_first() {
        let cut = usize::from(cut).min(rest.len());
        let (header, claims) = rest.split_at(cut);
        check(&sign_raw(header, claims));
    }
}

fn check(token: &str) {
    let result = ring().verify(token, &validator(), NOW);
    let claims = match &result {
        Ok(claims) => claims,
        Err(VerifyError::Expired(claims)) => claims.as_ref(),
        Err(VerifyError::Invalid(_)) => return,
    };
    let mut parts = token.split('.');
    let (Some(h), Some(p)) = (parts.next(), parts.next()) else {
        panic!("accepted a token without three segments: {token:?}");
    };
    let header: serde_json::Value =
        serde_json::from_slice(&b64_decode(h).expect("accepted header is base64url"))
            .expect("accepted header is JSON");
    let payload_bytes = b64_decode(p).expect("accepted payload is base64url");
    let payload: serde_json::Value = match serde_json::from_slice(&payload_bytes) {
        Ok(value) => value,
        // Valid JSON grammar that `Value` cannot hold (e.g. 1e2000 in a member
        // the verifier skips, found by fuzzing): nothing left to cross-check.
        Err(e) if e.to_string().starts_with("number out of range") => return,
        Err(e) => panic!("accepted payload is not JSON: {e}"),
    };

    assert!(header.get("crit").is_none(), "accepted crit: {header}");
    let typ = header["typ"].as_str().expect("accepted token has typ");
    assert!(
        typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt"),
        "accepted typ {typ}"
    );
    let kid = header["kid"].as_str().expect("accepted token has kid");
    let key = ring().get(kid).expect("accepted kid is in the ring");
    assert_eq!(header["alg"].as_str(), Some(key.algorithm().as_str()));

    for name in ["exp", "iat", "sub", "iss", "aud", "jti", "sid"] {
        assert!(
            !payload[name].is_null(),
            "accepted without {name}: {payload}"
        );
    }
    assert!(payload["exp"].is_number() && payload["iat"].is_number());
    assert_eq!(payload["iss"].as_str(), Some("portcullis"));
    let aud = &payload["aud"];
    assert!(
        aud.as_str() == Some("portcullis")
            || aud
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v.as_str() == Some("portcullis"))),
        "accepted aud {aud}"
    );
    assert!(claims.iat <= NOW + 60, "accepted future iat");
    assert!(
        claims.nbf.is_none_or(|nbf| nbf <= NOW + 60),
        "accepted future nbf"
    );
    let expired = NOW >= claims.exp.saturating_add(60);
    assert_eq!(
        expired,
        matches!(result, Err(VerifyError::Expired(_))),
        "expiry misjudged for exp {}",
        claims.exp
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed corpus of the fuzz target, run as an ordinary test.
    #[test]
    fn seed_corpus_upholds_the_oracle() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds");
        let mut count = 0;
        for entry in std::fs::read_dir(dir).expect("seed corpus exists") {
            let data = std::fs::read(entry.expect("readable entry").path()).expect("readable seed");
            run(&data);
            count += 1;
        }
        assert!(count >= 10, "seed corpus too small: {count}");
    }

    /// A seed that is a valid token is accepted, so the oracle's assertions
    /// are really exercised and not skipped by a blanket rejection.
    #[test]
    fn oracle_sees_accepted_tokens() {
        let header = format!(
            r#"{{"alg":"HS256","typ":"at+jwt","kid":"{}"}}"#,
            hs256_kid()
        );
        let claims = format!(
            r#"{{"iss":"portcullis","aud":"portcullis","sub":"u","jti":"j","sid":"s","iat":{NOW},"exp":{}}}"#,
            NOW + 60
        );
        let token = sign_raw(header.as_bytes(), claims.as_bytes());
        assert!(ring().verify(&token, &validator(), NOW).is_ok());
        run(token.as_bytes());
    }
}
