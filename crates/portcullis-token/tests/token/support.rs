//! Forging helpers: tests need tokens with arbitrary headers and claims,
//! which the public API (rightly) cannot produce.

use aws_lc_rs::hmac;
use aws_lc_rs::signature::Ed25519KeyPair;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_token::{Algorithm, Audience, Claims, KeyRing, SigningKey, Validator};
use serde_json::{Value, json};

pub const NOW: i64 = 1_700_000_000;

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn validator() -> Validator {
    Validator::new("portcullis", "portcullis")
}

pub fn claims() -> Claims {
    Claims {
        iss: "portcullis".into(),
        sub: "0190c3a4-7f5e-7b7a-9d1e-2f1d0c9b8a76".into(),
        aud: Audience::from("portcullis"),
        exp: NOW + 900,
        iat: NOW,
        nbf: Some(NOW),
        jti: "7e0c5a52-2d1f-4c1e-9f0a-3b8f4a1c2d3e".into(),
        sid: "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b".into(),
        email: "ada@example.com".into(),
        name: "Ada".into(),
        roles: vec!["user".into()],
    }
}

pub fn claims_json() -> Value {
    serde_json::to_value(claims()).expect("claims serialise")
}

pub fn header_for(key: &SigningKey) -> Value {
    json!({"alg": key.algorithm().as_str(), "kid": key.kid(), "typ": "at+jwt"})
}

/// A signer for forged tokens.
pub enum Forger<'a> {
    /// Signs with this key's private half (exported through PKCS#8).
    Key(&'a SigningKey),
    /// HMAC-SHA256 under arbitrary bytes.
    Hmac(&'a [u8]),
    /// No signature at all: `header.payload.`
    Unsigned,
}

pub fn forge(header: &Value, claims: &Value, signer: Forger<'_>) -> String {
    forge_raw(
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
        signer,
    )
}

pub fn forge_raw(header: &[u8], claims: &[u8], signer: Forger<'_>) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = match signer {
        Forger::Hmac(key) => {
            b64(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), input.as_bytes()).as_ref())
        }
        Forger::Unsigned => String::new(),
        Forger::Key(key) if key.algorithm() == Algorithm::EdDSA => {
            let der = key.to_pkcs8_der().expect("exportable");
            let pair = Ed25519KeyPair::from_pkcs8(&der).expect("ed25519 pkcs8");
            b64(pair.sign(input.as_bytes()).as_ref())
        }
        Forger::Key(key) => {
            // Re-sign through the library with the key's own header, then
            // swap in ours: only EdDSA and HMAC forging are needed below.
            panic!("forging with {} is not supported", key.algorithm())
        }
    };
    format!("{input}.{signature}")
}

pub fn eddsa() -> SigningKey {
    SigningKey::generate(Algorithm::EdDSA).expect("generate EdDSA")
}

pub fn hs256() -> SigningKey {
    SigningKey::from_secret(b"0123456789abcdef0123456789abcdef-portcullis").expect("secret")
}

pub fn ring_of(key: &SigningKey) -> KeyRing {
    KeyRing::with_signing_key(key.clone())
}
