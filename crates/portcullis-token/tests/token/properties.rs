//! Property: no single-byte change of a valid token ever verifies.

use portcullis_token::{Algorithm, KeyRing, SigningKey};
use proptest::prelude::*;

use crate::support::{NOW, claims, validator};

fn check_mutation(
    alg: Algorithm,
    index: prop::sample::Index,
    byte: u8,
) -> Result<(), TestCaseError> {
    thread_local! {
        static RINGS: std::collections::HashMap<&'static str, (KeyRing, String)> =
            [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256, Algorithm::HS256]
                .into_iter()
                .map(|alg| {
                    let ring = KeyRing::with_signing_key(SigningKey::generate(alg).expect("generate"));
                    let token = ring.sign(&claims()).expect("sign");
                    (alg.as_str(), (ring, token))
                })
                .collect();
    }
    RINGS.with(|rings| {
        let (ring, token) = &rings[alg.as_str()];
        prop_assert!(ring.verify(token, &validator(), NOW).is_ok());
        let mut bytes = token.clone().into_bytes();
        let at = index.index(bytes.len());
        prop_assume!(bytes[at] != byte);
        bytes[at] = byte;
        let mutated = String::from_utf8(bytes).expect("ASCII stays UTF-8");
        prop_assert!(
            ring.verify(&mutated, &validator(), NOW).is_err(),
            "{alg}: byte {at} set to {byte:#x} still verifies"
        );
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_single_byte_change_fails(
        alg in prop::sample::select(vec![Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256, Algorithm::HS256]),
        index in any::<prop::sample::Index>(),
        byte in 0x20u8..0x7f,
    ) {
        check_mutation(alg, index, byte)?;
    }
}
