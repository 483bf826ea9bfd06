//! One row per attack and per rule of API.md's Tokens section, each with the
//! exact error it must earn.

use portcullis_token::{InvalidReason, KeyRing, MAX_TOKEN_LEN, VerifyError};
use serde_json::{Value, json};

use crate::support::{
    Forger, NOW, claims, claims_json, eddsa, forge, forge_raw, header_for, hs256, ring_of,
    validator,
};

fn invalid(reason: InvalidReason) -> Result<(), VerifyError> {
    Err(VerifyError::Invalid(reason))
}

fn outcome(ring: &KeyRing, token: &str, now: i64) -> Result<(), VerifyError> {
    ring.verify(token, &validator(), now).map(|_| ())
}

fn with(mut value: Value, key: &str, member: Value) -> Value {
    value[key] = member;
    value
}

fn without(mut value: Value, key: &str) -> Value {
    value.as_object_mut().expect("object").remove(key);
    value
}

#[test]
fn header_attacks_on_an_eddsa_ring() {
    let key = eddsa();
    let other = eddsa();
    let mut ring = ring_of(&key);
    ring.insert(other.verifying_key().clone());
    let header = header_for(&key);
    let body = claims_json();
    let public_x = key
        .verifying_key()
        .to_jwk()
        .and_then(|j| j.x.clone())
        .expect("x");
    let public_raw = crate::support::b64(public_x.as_bytes());
    let valid = forge(&header, &body, Forger::Key(&key));
    let (signing_input, _) = valid.rsplit_once('.').expect("three parts");

    let cases: Vec<(&str, String, Result<(), VerifyError>)> = vec![
        ("a genuine token", valid.clone(), Ok(())),
        (
            "alg none, no signature",
            forge(
                &with(header.clone(), "alg", json!("none")),
                &body,
                Forger::Unsigned,
            ),
            invalid(InvalidReason::AlgorithmMismatch),
        ),
        (
            "alg NONE",
            forge(
                &with(header.clone(), "alg", json!("NONE")),
                &body,
                Forger::Unsigned,
            ),
            invalid(InvalidReason::AlgorithmMismatch),
        ),
        (
            "HS256 keyed with the public key's x string",
            forge(
                &with(header.clone(), "alg", json!("HS256")),
                &body,
                Forger::Hmac(public_x.as_bytes()),
            ),
            invalid(InvalidReason::AlgorithmMismatch),
        ),
        (
            "HS256 keyed with the public key's bytes",
            forge(
                &with(header.clone(), "alg", json!("HS256")),
                &body,
                Forger::Hmac(public_raw.as_bytes()),
            ),
            invalid(InvalidReason::AlgorithmMismatch),
        ),
        (
            "missing alg",
            forge(&without(header.clone(), "alg"), &body, Forger::Key(&key)),
            invalid(InvalidReason::AlgorithmMismatch),
        ),
        (
            "kid naming another key of the ring",
            forge(
                &with(header.clone(), "kid", json!(other.kid())),
                &body,
                Forger::Key(&key),
            ),
            invalid(InvalidReason::BadSignature),
        ),
        (
            "kid as a path",
            forge(
                &with(header.clone(), "kid", json!("../../../../dev/null")),
                &body,
                Forger::Key(&key),
            ),
            invalid(InvalidReason::UnknownKeyId),
        ),
        (
            "no kid",
            forge(&without(header.clone(), "kid"), &body, Forger::Key(&key)),
            invalid(InvalidReason::MissingKeyId),
        ),
        (
            "stripped signature",
            format!("{signing_input}."),
            invalid(InvalidReason::BadSignature),
        ),
        (
            "signature segment removed",
            signing_input.to_owned(),
            invalid(InvalidReason::Malformed),
        ),
        (
            "signature from another key",
            forge(&header, &body, Forger::Key(&other)),
            invalid(InvalidReason::BadSignature),
        ),
        (
            "crit",
            forge(
                &with(header.clone(), "crit", json!(["exp"])),
                &body,
                Forger::Key(&key),
            ),
            invalid(InvalidReason::CriticalHeader),
        ),
        (
            "crit null",
            forge(
                &with(header.clone(), "crit", Value::Null),
                &body,
                Forger::Key(&key),
            ),
            invalid(InvalidReason::CriticalHeader),
        ),
        (
            "jku to an attacker's JWKS with an unknown kid",
            forge(
                &with(
                    with(header.clone(), "jku", json!("https://evil.example/jwks")),
                    "kid",
                    json!("evil"),
                ),
                &body,
                Forger::Key(&other),
            ),
            invalid(InvalidReason::UnknownKeyId),
        ),
        (
            "embedded jwk of the attacker's key under a known kid",
            {
                let attacker = eddsa();
                let embedded =
                    serde_json::to_value(attacker.verifying_key().to_jwk()).expect("jwk");
                forge(
                    &with(header.clone(), "jwk", embedded),
                    &body,
                    Forger::Key(&attacker),
                )
            },
            invalid(InvalidReason::BadSignature),
        ),
        (
            "x5u and x5c are ignored, not followed",
            forge(
                &with(
                    with(header.clone(), "x5u", json!("https://evil.example/c.pem")),
                    "x5c",
                    json!(["AAAA"]),
                ),
                &body,
                Forger::Key(&key),
            ),
            Ok(()),
        ),
        (
            "typ JWT",
            forge(
                &with(header.clone(), "typ", json!("JWT")),
                &body,
                Forger::Key(&key),
            ),
            invalid(InvalidReason::WrongType),
        ),
        (
            "no typ",
            forge(&without(header.clone(), "typ"), &body, Forger::Key(&key)),
            invalid(InvalidReason::WrongType),
        ),
        (
            "typ application/AT+JWT, any case",
            forge(
                &with(header.clone(), "typ", json!("application/AT+JWT")),
                &body,
                Forger::Key(&key),
            ),
            Ok(()),
        ),
        (
            "header not JSON",
            forge_raw(b"{not json", body.to_string().as_bytes(), Forger::Key(&key)),
            invalid(InvalidReason::Malformed),
        ),
        (
            "invalid UTF-8 in an unknown header member",
            {
                let mut raw = header.to_string().into_bytes();
                raw.pop();
                raw.extend_from_slice(b",\"x\":\"\xff\"}");
                forge_raw(&raw, body.to_string().as_bytes(), Forger::Key(&key))
            },
            invalid(InvalidReason::Malformed),
        ),
        (
            "four segments",
            format!("{valid}.AAAA"),
            invalid(InvalidReason::Malformed),
        ),
        (
            "empty string",
            String::new(),
            invalid(InvalidReason::Malformed),
        ),
    ];
    for (name, token, expected) in cases {
        assert_eq!(outcome(&ring, &token, NOW), expected, "{name}");
    }
}

#[test]
fn tokens_over_8_kib_are_refused_before_decoding() {
    let key = eddsa();
    let ring = ring_of(&key);
    let mut big = claims();
    big.name = "x".repeat(6000);
    let token = key.sign(&big).expect("sign");
    assert!(token.len() > MAX_TOKEN_LEN);
    assert_eq!(outcome(&ring, &token, NOW), invalid(InvalidReason::TooLong));

    big.name = "x".repeat(5500);
    let token = key.sign(&big).expect("sign");
    assert!(token.len() <= MAX_TOKEN_LEN, "{}", token.len());
    assert_eq!(outcome(&ring, &token, NOW), Ok(()));
    // Garbage of that size is refused as too long, not parsed.
    assert_eq!(
        outcome(&ring, &"A".repeat(MAX_TOKEN_LEN + 1), NOW),
        invalid(InvalidReason::TooLong)
    );
}

#[test]
fn claim_rules() {
    let key = hs256();
    let ring = ring_of(&key);
    let header = header_for(&key);
    let secret = b"0123456789abcdef0123456789abcdef-portcullis";
    let token = |body: Value| forge(&header, &body, Forger::Hmac(secret));
    let body = claims_json();

    let mut cases: Vec<(String, Value, i64, Result<(), VerifyError>)> = vec![
        ("genuine".into(), body.clone(), NOW, Ok(())),
        (
            "wrong issuer".into(),
            with(body.clone(), "iss", json!("evil")),
            NOW,
            invalid(InvalidReason::WrongIssuer),
        ),
        (
            "aud string mismatch".into(),
            with(body.clone(), "aud", json!("other")),
            NOW,
            invalid(InvalidReason::WrongAudience),
        ),
        (
            "aud array without ours".into(),
            with(body.clone(), "aud", json!(["a", "b"])),
            NOW,
            invalid(InvalidReason::WrongAudience),
        ),
        (
            "aud empty array".into(),
            with(body.clone(), "aud", json!([])),
            NOW,
            invalid(InvalidReason::WrongAudience),
        ),
        (
            "aud array with ours".into(),
            with(body.clone(), "aud", json!(["a", "portcullis"])),
            NOW,
            Ok(()),
        ),
        (
            "aud of the wrong type".into(),
            with(body.clone(), "aud", json!(7)),
            NOW,
            invalid(InvalidReason::MalformedClaims),
        ),
        (
            "iat 61 s in the future".into(),
            with(body.clone(), "iat", json!(NOW + 61)),
            NOW,
            invalid(InvalidReason::IssuedInFuture),
        ),
        (
            "iat 60 s in the future".into(),
            with(body.clone(), "iat", json!(NOW + 60)),
            NOW,
            Ok(()),
        ),
        (
            "nbf 61 s in the future".into(),
            with(body.clone(), "nbf", json!(NOW + 61)),
            NOW,
            invalid(InvalidReason::NotYetValid),
        ),
        (
            "nbf 60 s in the future".into(),
            with(body.clone(), "nbf", json!(NOW + 60)),
            NOW,
            Ok(()),
        ),
        ("no nbf".into(), without(body.clone(), "nbf"), NOW, Ok(())),
        (
            "exp as a string (CVE-2026-25537)".into(),
            with(body.clone(), "exp", json!((NOW + 900).to_string())),
            NOW,
            invalid(InvalidReason::MalformedClaims),
        ),
        (
            "nbf as a string".into(),
            with(body.clone(), "nbf", json!((NOW + 9000).to_string())),
            NOW,
            invalid(InvalidReason::MalformedClaims),
        ),
        (
            "fractional exp".into(),
            with(body.clone(), "exp", json!(NOW as f64 + 900.5)),
            NOW,
            Ok(()),
        ),
        (
            "duplicate exp".into(),
            Value::Null,
            NOW,
            invalid(InvalidReason::MalformedClaims),
        ),
        (
            "invalid UTF-8 in an unknown member (found by fuzzing)".into(),
            Value::Null,
            NOW,
            invalid(InvalidReason::MalformedClaims),
        ),
        (
            "claims not an object".into(),
            json!([1, 2]),
            NOW,
            invalid(InvalidReason::MalformedClaims),
        ),
        (
            "roles not strings".into(),
            with(body.clone(), "roles", json!([1])),
            NOW,
            invalid(InvalidReason::MalformedClaims),
        ),
        (
            "wrong issuer and expired: invalid, not expired".into(),
            with(body.clone(), "iss", json!("evil")),
            NOW + 5000,
            invalid(InvalidReason::WrongIssuer),
        ),
        ("exp 59 s ago".into(), body.clone(), NOW + 900 + 59, Ok(())),
    ];
    for claim in ["exp", "iat", "sub", "iss", "aud", "jti", "sid"] {
        cases.push((
            format!("{claim} missing"),
            without(body.clone(), claim),
            NOW,
            invalid(InvalidReason::MissingClaim(claim)),
        ));
        cases.push((
            format!("{claim} null"),
            with(body.clone(), claim, Value::Null),
            NOW,
            invalid(InvalidReason::MissingClaim(claim)),
        ));
    }
    for claim in ["sub", "iss", "jti", "sid"] {
        cases.push((
            format!("{claim} empty"),
            with(body.clone(), claim, json!("")),
            NOW,
            invalid(InvalidReason::MissingClaim(claim)),
        ));
    }
    for (name, body, now, expected) in cases {
        let token = if name == "duplicate exp" {
            let raw = format!(
                r#"{{"iss":"portcullis","aud":"portcullis","sub":"u","jti":"j","sid":"s","iat":{NOW},"exp":1,"exp":{}}}"#,
                NOW + 900
            );
            forge_raw(
                header.to_string().as_bytes(),
                raw.as_bytes(),
                Forger::Hmac(secret),
            )
        } else if name.starts_with("invalid UTF-8") {
            let mut raw = body.to_string().into_bytes();
            raw.pop();
            raw.extend_from_slice(b",\"x\":[\"u\xb6\"]}");
            forge_raw(header.to_string().as_bytes(), &raw, Forger::Hmac(secret))
        } else {
            token(body)
        };
        assert_eq!(outcome(&ring, &token, now), expected, "{name}");
    }
}

#[test]
fn expired_means_otherwise_valid_and_carries_the_claims() {
    let key = eddsa();
    let ring = ring_of(&key);
    let token = key.sign(&claims()).expect("sign");
    match ring.verify(&token, &validator(), NOW + 900 + 60) {
        Err(VerifyError::Expired(got)) => assert_eq!(*got, claims()),
        other => panic!("expected Expired, got {other:?}"),
    }
}

#[test]
fn a_symmetric_ring_refuses_asymmetric_claims_and_vice_versa() {
    let hs = hs256();
    let ed = eddsa();
    let mut ring = ring_of(&hs);
    ring.insert(ed.verifying_key().clone());
    // EdDSA header naming the HS256 kid.
    let header = json!({"alg": "EdDSA", "kid": hs.kid(), "typ": "at+jwt"});
    let token = forge(&header, &claims_json(), Forger::Key(&ed));
    assert_eq!(
        outcome(&ring, &token, NOW),
        invalid(InvalidReason::AlgorithmMismatch)
    );
    // HS256 header naming the EdDSA kid, MACed with the HS256 secret.
    let header = json!({"alg": "HS256", "kid": ed.kid(), "typ": "at+jwt"});
    let token = forge(
        &header,
        &claims_json(),
        Forger::Hmac(b"0123456789abcdef0123456789abcdef-portcullis"),
    );
    assert_eq!(
        outcome(&ring, &token, NOW),
        invalid(InvalidReason::AlgorithmMismatch)
    );
}
