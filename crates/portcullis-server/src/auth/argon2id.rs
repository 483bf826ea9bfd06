//! argon2id in working memory the hashing thread keeps.
//!
//! argon2's own `hash_password` allocates its m = 19 MiB on every call.
//! glibc serves blocks of that size from the thread's arena once its dynamic
//! mmap threshold has risen, and keeps what is freed: eight concurrent logins
//! left 196 MB resident. Here each thread keeps one block for its life, so
//! memory is bounded by hashing threads × m, and a hash no longer pays for
//! allocating, faulting in and zeroing a fresh block (argon2 writes every
//! block before it reads it, so a reused block needs no clearing).

use std::cell::RefCell;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

thread_local! {
    static KEPT: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

#[derive(Debug, thiserror::Error)]
pub enum Argon2Error {
    #[error("random generator failed")]
    Random,
    #[error("argon2: {0}")]
    Argon2(#[from] argon2::Error),
    #[error("argon2 parameters: {0}")]
    Params(#[from] argon2::password_hash::Error),
    #[error("PHC string: {0}")]
    Phc(#[from] argon2::password_hash::phc::Error),
}

/// Hashes `password` with the current parameters (argon2id, OWASP minimum)
/// and a fresh 16-byte salt into a PHC string.
pub fn hash(password: &[u8]) -> Result<String, Argon2Error> {
    let params = Params::default();
    let mut salt = [0u8; Salt::RECOMMENDED_LENGTH];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| Argon2Error::Random)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    run(&argon2, password, &salt, &mut out)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(Salt::new(&salt)?),
        hash: Some(Output::new(&out)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches `stored` (any argon2 variant, version and
/// parameters); the comparison is constant-time.
pub fn verify(password: &[u8], stored: &PasswordHash) -> bool {
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(stored.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = stored
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let Ok(params) = Params::try_from(stored) else {
        return false;
    };
    let mut out = [0u8; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    run(&argon2, password, salt, out).is_ok()
        && Output::new(out).is_ok_and(|computed| computed == *expected)
}

fn run(argon2: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> argon2::Result<()> {
    let blocks = argon2.params().block_count();
    if blocks > Params::default().block_count() {
        // An imported hash that asks for more memory than ours: the thread
        // keeps only what current hashes need.
        return argon2.hash_password_into(password, salt, out);
    }
    KEPT.with_borrow_mut(|kept| {
        if kept.len() < blocks {
            kept.resize(blocks, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut kept[..blocks])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordHasher;

    fn phc(s: &str) -> PasswordHash {
        PasswordHash::new(s).expect("a PHC string")
    }

    #[test]
    fn hashes_verify_here_and_with_the_argon2_crate_alike() {
        let ours = hash(b"correct horse").expect("hash");
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        assert!(verify(b"correct horse", &phc(&ours)));
        assert!(!verify(b"correct horsf", &phc(&ours)));
        let mut theirs = String::new();
        for (params, algorithm) in [
            (Params::default(), Algorithm::Argon2id),
            (
                Params::new(8192, 1, 1, None).expect("params"),
                Algorithm::Argon2i,
            ),
            // More memory than the thread keeps: verified in memory of its own.
            (
                Params::new(24_576, 1, 2, Some(24)).expect("params"),
                Algorithm::Argon2d,
            ),
        ] {
            theirs = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"pw-12345")
                .expect("hash")
                .to_string();
            assert!(verify(b"pw-12345", &phc(&theirs)), "{theirs}");
            assert!(!verify(b"pw-12346", &phc(&theirs)), "{theirs}");
        }
        let kept = KEPT.with_borrow(Vec::len);
        assert_eq!(
            kept,
            Params::default().block_count(),
            "kept no more than ours need"
        );
        let unsalted = theirs.split('$').take(4).collect::<Vec<_>>().join("$");
        assert!(!verify(b"pw-12345", &phc(&unsalted)));
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_salt() {
        let (a, b) = (hash(b"same").expect("hash"), hash(b"same").expect("hash"));
        assert_ne!(a, b);
        assert!(verify(b"same", &phc(&a)) && verify(b"same", &phc(&b)));
    }
}
