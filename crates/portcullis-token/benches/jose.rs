//! Sign and verify per algorithm, ours beside a direct call of jsonwebtoken
//! doing the same work, so the wrapper's overhead shows as a ratio.
//!
//! `cargo bench -p portcullis-token --bench jose -- --warm-up-time 1 --measurement-time 3`

use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use portcullis_token::{Algorithm, Audience, Claims, KeyRing, SigningKey, Validator};
use serde::Deserialize;

/// The same claims, as a plain struct for the library's own `decode`.
#[derive(Deserialize)]
#[allow(dead_code)]
struct LibraryClaims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: String,
    sid: String,
    email: String,
    name: String,
    roles: Vec<String>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn claims() -> Claims {
    let now = now();
    Claims {
        iss: "portcullis".into(),
        sub: "0190c3a4-7f5e-7b7a-9d1e-2f1d0c9b8a76".into(),
        aud: Audience::from("portcullis"),
        exp: now + 3600,
        iat: now,
        nbf: Some(now),
        jti: "7e0c5a52-2d1f-4c1e-9f0a-3b8f4a1c2d3e".into(),
        sid: "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b".into(),
        email: "ada@example.com".into(),
        name: "Ada Lovelace".into(),
        roles: vec!["user".into()],
    }
}

/// What the library needs to do our job: the key parsed once, a Validation
/// as strict as the library allows, plus the `typ` and `crit` checks it
/// never makes.
struct Library {
    alg: jsonwebtoken::Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    header: Header,
    validation: Validation,
}

impl Library {
    fn new(key: &SigningKey) -> Self {
        let alg = match key.algorithm() {
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
        };
        let (encoding, decoding) = match key.algorithm() {
            Algorithm::HS256 => (
                EncodingKey::from_secret(SECRET),
                DecodingKey::from_secret(SECRET),
            ),
            _ => {
                let der = key.to_pkcs8_der().expect("der");
                let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(
                    serde_json::to_value(key.verifying_key().to_jwk()).expect("jwk"),
                )
                .expect("library jwk");
                let encoding = match key.algorithm() {
                    Algorithm::EdDSA => EncodingKey::from_ed_der(&der),
                    Algorithm::ES256 => EncodingKey::from_ec_der(&der),
                    _ => EncodingKey::from_rsa_pem(key.to_pkcs8_pem().expect("pem").as_bytes())
                        .expect("rsa"),
                };
                (encoding, DecodingKey::from_jwk(&jwk).expect("decoding"))
            }
        };
        let mut header = Header::new(alg);
        header.kid = Some(key.kid().to_owned());
        header.typ = Some("at+jwt".into());
        let mut validation = Validation::new(alg);
        validation.set_issuer(&["portcullis"]);
        validation.set_audience(&["portcullis"]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 60;
        Self {
            alg,
            encoding,
            decoding,
            header,
            validation,
        }
    }

    fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&self.header, claims, &self.encoding).expect("library signs")
    }

    fn verify(&self, token: &str) -> LibraryClaims {
        let header = jsonwebtoken::decode_header(token).expect("header");
        assert!(header.crit.is_none() && header.alg == self.alg);
        assert!(
            header
                .typ
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt"))
        );
        jsonwebtoken::decode::<LibraryClaims>(token, &self.decoding, &self.validation)
            .expect("library verifies")
            .claims
    }
}

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-portcullis";

fn bench(c: &mut Criterion) {
    let validator = Validator::new("portcullis", "portcullis");
    for alg in [
        Algorithm::EdDSA,
        Algorithm::ES256,
        Algorithm::RS256,
        Algorithm::HS256,
    ] {
        let key = match alg {
            Algorithm::HS256 => SigningKey::from_secret(SECRET).expect("secret"),
            _ => SigningKey::generate(alg).expect("generate"),
        };
        let ring = KeyRing::with_signing_key(key.clone());
        let library = Library::new(&key);
        let claims = claims();
        let token = ring.sign(&claims).expect("sign");
        let now = now();
        assert!(ring.verify(&library.sign(&claims), &validator, now).is_ok());
        library.verify(&token);

        let mut group = c.benchmark_group(alg.as_str());
        if alg == Algorithm::RS256 {
            group.sample_size(20);
        }
        group.bench_function("sign/portcullis", |b| {
            b.iter(|| ring.sign(std::hint::black_box(&claims)))
        });
        group.bench_function("sign/jsonwebtoken", |b| {
            b.iter(|| library.sign(std::hint::black_box(&claims)))
        });
        group.bench_function("verify/portcullis", |b| {
            b.iter(|| ring.verify(std::hint::black_box(&token), &validator, now))
        });
        group.bench_function("verify/jsonwebtoken", |b| {
            b.iter(|| library.verify(std::hint::black_box(&token)))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
