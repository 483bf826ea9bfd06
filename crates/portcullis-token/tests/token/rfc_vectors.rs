//! Published test vectors: they verify at the signature layer, and the strict
//! validator refuses them for exactly what their headers and claims lack.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_token::{
    Algorithm, InvalidReason, Jwk, KeyRing, SigningKey, VerifyError, VerifyingKey,
};
use serde_json::json;

use crate::support::{Forger, NOW, forge_raw, validator};

/// RFC 7515 Appendix A.1: HS256.
const RFC7515_A1_KEY: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
const RFC7515_A1_JWS: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const RFC7515_A1_PAYLOAD: &[u8] =
    b"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";

/// RFC 8037 Appendix A: the Ed25519 key (A.1/A.2), its thumbprint (A.3) and
/// the signed example (A.4).
const RFC8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const RFC8037_THUMBPRINT: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
const RFC8037_A4_JWS: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

fn rfc7515_key() -> VerifyingKey {
    let secret = URL_SAFE_NO_PAD.decode(RFC7515_A1_KEY).expect("vector key");
    VerifyingKey::from_secret(&secret).expect("64-byte secret")
}

fn rfc8037_public() -> VerifyingKey {
    let jwk: Jwk = serde_json::from_value(json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}))
        .expect("vector JWK");
    VerifyingKey::from_jwk(&jwk).expect("Ed25519 JWK")
}

#[test]
fn rfc7515_a1_verifies_at_the_signature_layer() {
    let payload = rfc7515_key()
        .verify_signature(RFC7515_A1_JWS)
        .expect("RFC 7515 A.1 signature verifies");
    assert_eq!(payload, RFC7515_A1_PAYLOAD);
}

#[test]
fn rfc7515_a1_is_refused_by_the_strict_validator() {
    let mut ring = KeyRing::new();
    ring.insert(rfc7515_key());
    // Its header says typ JWT and names no kid: the typ check comes first.
    assert_eq!(
        ring.verify(RFC7515_A1_JWS, &validator(), NOW),
        Err(VerifyError::Invalid(InvalidReason::WrongType))
    );
    // Its claims, under a header that passes, still lack iat (exp is present).
    let secret = URL_SAFE_NO_PAD.decode(RFC7515_A1_KEY).expect("vector key");
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": rfc7515_key().kid()});
    let token = forge_raw(
        header.to_string().as_bytes(),
        RFC7515_A1_PAYLOAD,
        Forger::Hmac(&secret),
    );
    assert_eq!(
        ring.verify(&token, &validator(), NOW),
        Err(VerifyError::Invalid(InvalidReason::MissingClaim("iat")))
    );
}

#[test]
fn rfc8037_a4_verifies_at_the_signature_layer() {
    let key = rfc8037_public();
    assert_eq!(
        key.kid(),
        RFC8037_THUMBPRINT,
        "kid is the RFC 7638 thumbprint"
    );
    let payload = key
        .verify_signature(RFC8037_A4_JWS)
        .expect("RFC 8037 A.4 signature verifies");
    assert_eq!(payload, b"Example of Ed25519 signing");
}

#[test]
fn rfc8037_a4_is_refused_by_the_strict_validator() {
    let mut ring = KeyRing::new();
    ring.insert(rfc8037_public());
    assert_eq!(
        ring.verify(RFC8037_A4_JWS, &validator(), NOW),
        Err(VerifyError::Invalid(InvalidReason::WrongType))
    );
}

#[test]
fn rfc8037_private_key_loads_from_pkcs8_v1_with_the_published_thumbprint() {
    // PKCS#8 v1 for Ed25519 (RFC 8410 §7): a fixed 16-byte prefix + the seed.
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend(URL_SAFE_NO_PAD.decode(RFC8037_D).expect("seed"));
    let key = SigningKey::from_pkcs8_der(Algorithm::EdDSA, &der).expect("PKCS#8 v1 Ed25519");
    assert_eq!(key.kid(), RFC8037_THUMBPRINT);
    let jwk = key.verifying_key().to_jwk().expect("public JWK");
    assert_eq!(jwk.x.as_deref(), Some(RFC8037_X));
}
