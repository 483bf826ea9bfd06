//! Keys: generation, PKCS#8 round trips, algorithm pinning, kids and JWKS.

use portcullis_token::{
    Algorithm, InvalidReason, Jwk, JwkSet, KeyError, KeyRing, SignError, SigningKey, VerifyError,
    VerifyingKey,
};
use serde_json::json;

use crate::support::{NOW, claims, validator};

const ASYMMETRIC: [Algorithm; 3] = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];

#[test]
fn every_algorithm_signs_and_verifies() {
    for alg in ASYMMETRIC.into_iter().chain([Algorithm::HS256]) {
        let key = SigningKey::generate(alg).expect("generate");
        assert_eq!(key.algorithm(), alg);
        let ring = KeyRing::with_signing_key(key.clone());
        let token = ring.sign(&claims()).expect("sign");
        assert_eq!(
            ring.verify(&token, &validator(), NOW),
            Ok(claims()),
            "{alg}"
        );
    }
}

#[test]
fn pem_round_trip_keeps_the_key_and_its_kid() {
    for alg in ASYMMETRIC {
        let key = SigningKey::generate(alg).expect("generate");
        let pem = key.to_pkcs8_pem().expect("export");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{alg}");
        let loaded = SigningKey::from_pkcs8_pem(alg, &pem).expect("reload");
        assert_eq!(loaded.kid(), key.kid(), "{alg}");
        // A token of the reloaded key verifies under the original's public half.
        let mut ring = KeyRing::new();
        ring.insert(key.verifying_key().clone());
        let token = loaded.sign(&claims()).expect("sign");
        assert!(ring.verify(&token, &validator(), NOW).is_ok(), "{alg}");
        // The kid is the RFC 7638 thumbprint of the published JWK.
        let jwk = key.verifying_key().to_jwk().expect("jwk");
        assert_eq!(jwk.thumbprint().as_deref(), Some(key.kid()), "{alg}");
    }
}

#[test]
fn a_key_is_pinned_to_the_algorithm_it_is_loaded_as() {
    for alg in ASYMMETRIC {
        let pem = SigningKey::generate(alg)
            .expect("generate")
            .to_pkcs8_pem()
            .expect("pem");
        for other in ASYMMETRIC.into_iter().filter(|o| *o != alg) {
            assert!(
                matches!(SigningKey::from_pkcs8_pem(other, &pem), Err(KeyError::InvalidKey(a)) if a == other),
                "{alg} key accepted as {other}"
            );
        }
        assert!(matches!(
            SigningKey::from_pkcs8_pem(Algorithm::HS256, &pem),
            Err(KeyError::Symmetric)
        ));
    }
}

#[test]
fn bad_pem_is_refused() {
    let pem = SigningKey::generate(Algorithm::EdDSA)
        .expect("generate")
        .to_pkcs8_pem()
        .expect("pem");
    let relabelled = pem.replace("PRIVATE KEY", "PUBLIC KEY");
    assert!(matches!(
        SigningKey::from_pkcs8_pem(Algorithm::EdDSA, &relabelled),
        Err(KeyError::Pem { .. })
    ));
    assert!(matches!(
        SigningKey::from_pkcs8_pem(Algorithm::EdDSA, "not pem"),
        Err(KeyError::Pem { .. })
    ));
    assert!(matches!(
        SigningKey::from_pkcs8_der(Algorithm::EdDSA, b"\x30\x00"),
        Err(KeyError::InvalidKey(Algorithm::EdDSA))
    ));
}

#[test]
fn hs256_secrets() {
    assert!(matches!(
        SigningKey::from_secret(&[7; 31]),
        Err(KeyError::SecretTooShort { len: 31 })
    ));
    let secret = b"this-is-a-32-byte-secret-for-jwt";
    let key = SigningKey::from_secret(secret).expect("32 bytes");
    let again = SigningKey::from_secret(secret).expect("32 bytes");
    let other = SigningKey::from_secret(b"this-is-a-32-byte-secret-for-jwT").expect("32 bytes");
    assert_eq!(key.kid(), again.kid(), "kid is stable");
    assert_ne!(key.kid(), other.kid(), "kid depends on the secret");
    assert!(!key.kid().contains("secret"));
    assert!(matches!(key.to_pkcs8_pem(), Err(KeyError::Symmetric)));
    assert!(key.verifying_key().to_jwk().is_none());
    assert!(
        !format!("{key:?}").contains("secret-for"),
        "Debug hides the secret"
    );
    // A previous secret verifies tokens it signed.
    let mut ring = KeyRing::with_signing_key(other.clone());
    ring.insert(VerifyingKey::from_secret(secret).expect("previous"));
    let token = key.sign(&claims()).expect("sign");
    assert!(ring.verify(&token, &validator(), NOW).is_ok());
}

#[test]
fn jwks_publishes_public_keys_only_and_round_trips() {
    let ed = SigningKey::generate(Algorithm::EdDSA).expect("ed");
    let es = SigningKey::generate(Algorithm::ES256).expect("es");
    let rs = SigningKey::generate(Algorithm::RS256).expect("rs");
    let hs = SigningKey::from_secret(&[9; 32]).expect("hs");
    let mut ring = KeyRing::with_signing_key(ed.clone());
    for k in [&es, &rs, &hs] {
        ring.insert(k.verifying_key().clone());
    }
    let document = serde_json::to_string(&ring.jwks()).expect("serialise");
    let value: serde_json::Value = serde_json::from_str(&document).expect("json");
    let keys = value["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 3, "no HMAC key is published: {document}");
    for key in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(key.get(private).is_none(), "{private} leaked: {key}");
        }
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].is_string() && key["alg"].is_string());
    }

    let verifier = KeyRing::from_jwks(&JwkSet::from_json(document.as_bytes()).expect("parse"));
    assert_eq!(verifier.len(), 3);
    assert!(verifier.signing_key().is_none());
    assert!(matches!(
        verifier.sign(&claims()),
        Err(SignError::NoSigningKey)
    ));
    for k in [&ed, &es, &rs] {
        let token = k.sign(&claims()).expect("sign");
        assert_eq!(
            verifier.verify(&token, &validator(), NOW),
            Ok(claims()),
            "{}",
            k.algorithm()
        );
    }
    let token = hs.sign(&claims()).expect("sign");
    assert_eq!(
        verifier.verify(&token, &validator(), NOW),
        Err(VerifyError::Invalid(InvalidReason::UnknownKeyId))
    );
}

#[test]
fn unusable_jwks_are_refused() {
    let ed = SigningKey::generate(Algorithm::EdDSA).expect("ed");
    let good = serde_json::to_value(ed.verifying_key().to_jwk()).expect("jwk");
    let variant = |key: &str, value: serde_json::Value| {
        let mut v = good.clone();
        v[key] = value;
        serde_json::from_value::<Jwk>(v).expect("jwk shape")
    };
    let refused = [
        (
            "oct",
            serde_json::from_value::<Jwk>(json!({"kty": "oct", "kid": "h"})).expect("jwk"),
        ),
        ("alg HS256 on an OKP key", variant("alg", json!("HS256"))),
        ("alg RS256 on an OKP key", variant("alg", json!("RS256"))),
        ("use enc", variant("use", json!("enc"))),
        ("X25519", variant("crv", json!("X25519"))),
        ("short x", variant("x", json!("AAAA"))),
    ];
    for (name, jwk) in refused {
        assert!(VerifyingKey::from_jwk(&jwk).is_err(), "{name} accepted");
    }
    // RSA below 2048 bits.
    let small =
        serde_json::from_value::<Jwk>(json!({"kty": "RSA", "n": "AQAB".repeat(40), "e": "AQAB"}))
            .expect("jwk");
    assert!(matches!(
        VerifyingKey::from_jwk(&small),
        Err(KeyError::RsaKeyTooSmall { .. })
    ));
    // A JWK without alg or kid gets the one algorithm of its type and its thumbprint.
    let bare =
        serde_json::from_value::<Jwk>(json!({"kty": "OKP", "crv": "Ed25519", "x": good["x"]}))
            .expect("jwk");
    let key = VerifyingKey::from_jwk(&bare).expect("bare OKP");
    assert_eq!(key.algorithm(), Algorithm::EdDSA);
    assert_eq!(key.kid(), ed.kid());
}

#[test]
fn removing_a_key_stops_it_verifying() {
    let old = SigningKey::generate(Algorithm::EdDSA).expect("old");
    let new = SigningKey::generate(Algorithm::EdDSA).expect("new");
    let mut ring = KeyRing::with_signing_key(old.clone());
    let old_token = ring.sign(&claims()).expect("sign");
    ring.set_signing_key(new.clone());
    let new_token = ring.sign(&claims()).expect("sign");
    assert!(
        ring.verify(&old_token, &validator(), NOW).is_ok(),
        "rotated-out key still verifies"
    );
    assert!(new_token.contains('.') && ring.verify(&new_token, &validator(), NOW).is_ok());
    ring.remove(old.kid());
    assert_eq!(
        ring.verify(&old_token, &validator(), NOW),
        Err(VerifyError::Invalid(InvalidReason::UnknownKeyId))
    );
    ring.remove(new.kid());
    assert!(ring.signing_key().is_none());
}
