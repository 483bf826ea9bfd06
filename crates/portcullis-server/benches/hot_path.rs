//! In-process costs of the authenticated request's hot path: a full token
//! verification against a verified-token cache hit (and miss), and the
//! revocation check at several set sizes (it must not grow with the set).
//!
//! `cargo bench -p portcullis-server --bench hot_path`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_server::auth::revocation::Revocations;
use portcullis_server::auth::verified::VerifiedTokens;
use portcullis_server::store::{Revocation, RevocationKind, RevocationRecord};
use portcullis_token::{Algorithm, Audience, Claims, KeyRing, SigningKey, Validator};

const NOW: i64 = 1_800_000_000;

fn claims(n: usize) -> Claims {
    Claims {
        iss: "portcullis".into(),
        sub: format!("0193a000-0000-7000-8000-{n:012}"),
        aud: Audience::from("portcullis"),
        exp: NOW + 900,
        iat: NOW,
        nbf: None,
        jti: format!("0193a000-0000-4000-8000-{n:012}"),
        sid: format!("0193a000-0000-4000-9000-{n:012}"),
        email: "ada@example.com".into(),
        name: "Ada".into(),
        roles: vec!["user".into()],
    }
}

fn verification(c: &mut Criterion) {
    let ring = KeyRing::with_signing_key(SigningKey::generate(Algorithm::EdDSA).expect("key"));
    let validator = Validator::new("portcullis", "portcullis");
    let token = ring.sign(&claims(1)).expect("sign");
    let other = ring.sign(&claims(2)).expect("sign");
    let cache = VerifiedTokens::default();
    let verified = std::sync::Arc::new(ring.verify(&token, &validator, NOW).expect("verify"));
    cache.insert(&token, &verified);
    let mut group = c.benchmark_group("access token");
    group.bench_function("full verification (EdDSA)", |b| {
        b.iter(|| ring.verify(black_box(&token), &validator, NOW))
    });
    group.bench_function("cache hit", |b| {
        b.iter(|| cache.get(black_box(&token), NOW, &ring))
    });
    group.bench_function("cache miss", |b| {
        b.iter(|| cache.get(black_box(&other), NOW, &ring))
    });
    group.finish();
}

fn revocation_check(c: &mut Criterion) {
    let mut group = c.benchmark_group("revocation check");
    for size in [0usize, 1_000, 100_000] {
        let set = Revocations::new("bench".into());
        let records: Vec<RevocationRecord> = (0..size)
            .map(|i| RevocationRecord {
                id: i as i64 + 1,
                revocation: Revocation {
                    kind: [
                        RevocationKind::Session,
                        RevocationKind::Token,
                        RevocationKind::User,
                    ][i % 3],
                    subject: format!("revoked-{i}"),
                    before: Some(NOW),
                    expires: Some(NOW + 900),
                },
            })
            .collect();
        set.apply_local(&records);
        let live = claims(usize::MAX / 2);
        group.bench_function(format!("{size} entries"), |b| {
            b.iter(|| set.is_revoked(black_box(&live), None))
        });
    }
    group.finish();
}

criterion_group!(benches, verification, revocation_check);
criterion_main!(benches);
