//! Interoperability with an independent implementation (jsonwebtoken's own
//! `encode`/`decode`): our tokens are standard JWS, and standard JWS with our
//! header verifies here.

use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use portcullis_token::{Algorithm, Claims, KeyRing, SigningKey};

use crate::support::{NOW, claims, validator};

fn library_validation(alg: jsonwebtoken::Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.set_audience(&["portcullis"]);
    validation.set_issuer(&["portcullis"]);
    // The library reads the system clock; our fixture time is in the past.
    validation.validate_exp = false;
    validation
}

#[derive(serde::Deserialize)]
struct LibraryClaims {
    sub: String,
    sid: String,
}

#[test]
fn our_tokens_verify_in_jsonwebtoken() {
    for (alg, lib_alg) in [
        (Algorithm::EdDSA, jsonwebtoken::Algorithm::EdDSA),
        (Algorithm::ES256, jsonwebtoken::Algorithm::ES256),
        (Algorithm::RS256, jsonwebtoken::Algorithm::RS256),
    ] {
        let key = SigningKey::generate(alg).expect("generate");
        let token = key.sign(&claims()).expect("sign");
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(
            serde_json::to_value(key.verifying_key().to_jwk()).expect("jwk"),
        )
        .expect("library reads our JWK");
        let decoding = DecodingKey::from_jwk(&jwk).expect("library key");
        let data =
            jsonwebtoken::decode::<LibraryClaims>(&token, &decoding, &library_validation(lib_alg))
                .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(data.claims.sub, claims().sub);
        assert_eq!(data.claims.sid, claims().sid);
        assert_eq!(data.header.kid.as_deref(), Some(key.kid()));
        assert_eq!(data.header.typ.as_deref(), Some("at+jwt"));
    }
}

#[test]
fn library_tokens_with_our_header_verify_here() {
    for alg in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
        let key = SigningKey::generate(alg).expect("generate");
        let der = key.to_pkcs8_der().expect("der");
        let (encoding, lib_alg) = match alg {
            Algorithm::EdDSA => (
                EncodingKey::from_ed_der(&der),
                jsonwebtoken::Algorithm::EdDSA,
            ),
            Algorithm::ES256 => (
                EncodingKey::from_ec_der(&der),
                jsonwebtoken::Algorithm::ES256,
            ),
            _ => (
                EncodingKey::from_rsa_pem(key.to_pkcs8_pem().expect("pem").as_bytes())
                    .expect("rsa pem"),
                jsonwebtoken::Algorithm::RS256,
            ),
        };
        let mut header = Header::new(lib_alg);
        header.kid = Some(key.kid().to_owned());
        header.typ = Some("at+jwt".into());
        let token = jsonwebtoken::encode(&header, &claims(), &encoding).expect("library signs");
        let ring = KeyRing::with_signing_key(key);
        let verified: Claims = ring
            .verify(&token, &validator(), NOW)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(verified, claims());
    }
}
