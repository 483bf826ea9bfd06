//! The master key and what is derived from it: encryption of private keys at
//! rest, and keyed hashes of opaque tokens. No axum, no database.

use std::io::Write;
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::{hkdf, hmac, rand};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the master key must be 32 bytes of base64")]
    BadMasterKey,
    #[error("master key file {path}: {source}")]
    MasterKeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("decryption failed: wrong master key or corrupted data")]
    Decrypt,
    #[error("the system random generator failed")]
    Random,
}

/// 32 secret bytes from which every other server secret is derived.
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim()))
                .map_err(|_| SecretError::BadMasterKey)?,
        );
        let array: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SecretError::BadMasterKey)?;
        Ok(Self(Zeroizing::new(array)))
    }

    pub fn generate() -> Result<Self, SecretError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::fill(key.as_mut()).map_err(|_| SecretError::Random)?;
        Ok(Self(key))
    }

    /// Reads `path`, or creates it with a fresh key and mode 0600 when it does
    /// not exist (the zero-configuration start).
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        let file_error = |source| SecretError::MasterKeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(file_error)?;
                let encoded = Zeroizing::new(STANDARD.encode(key.0.as_ref()));
                writeln!(file, "{}", encoded.as_str()).map_err(file_error)?;
                file.sync_all().map_err(file_error)?;
                Ok(key)
            }
            Err(e) => Err(file_error(e)),
        }
    }

    /// A 32-byte subkey for one purpose (HKDF-SHA256, `label` as info), so
    /// no two uses ever share a key.
    pub fn derive(&self, label: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
        derive(self.0.as_ref(), label)
    }

    pub fn sealer(&self, label: &[u8]) -> Result<Sealer, SecretError> {
        Sealer::new(self.derive(label).as_ref())
    }

    pub fn token_hasher(&self, label: &[u8]) -> TokenHasher {
        TokenHasher(hmac::Key::new(
            hmac::HMAC_SHA256,
            self.derive(label).as_ref(),
        ))
    }
}

/// HKDF-SHA256 expand of `secret` for one labelled purpose.
pub fn derive(secret: &[u8], label: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
    struct Len;
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            KEY_LEN
        }
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"portcullis/v1").extract(secret);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    let info = [label];
    // HKDF expand cannot fail for 32 bytes of SHA-256 output.
    if let Ok(okm) = prk.expand(&info, Len) {
        let _ = okm.fill(out.as_mut());
    }
    out
}

/// AES-256-GCM with random nonces; output is `nonce ‖ ciphertext ‖ tag`.
pub struct Sealer(RandomizedNonceKey);

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn new(key: &[u8]) -> Result<Self, SecretError> {
        RandomizedNonceKey::new(&AES_256_GCM, key)
            .map(Self)
            .map_err(|_| SecretError::BadMasterKey)
    }

    /// Encrypts `plaintext`; `aad` binds the ciphertext to its owner (e.g. the
    /// key id) so it cannot be moved to another row.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SecretError> {
        let mut in_out = plaintext.to_vec();
        let nonce = self
            .0
            .seal_in_place_append_tag(Aad::from(aad), &mut in_out)
            .map_err(|_| SecretError::Random)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + in_out.len());
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        if sealed.len() < NONCE_LEN {
            return Err(SecretError::Decrypt);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Decrypt)?;
        let mut in_out = Zeroizing::new(ciphertext.to_vec());
        let plain_len = self
            .0
            .open_in_place(nonce, Aad::from(aad), in_out.as_mut_slice())
            .map_err(|_| SecretError::Decrypt)?
            .len();
        in_out.truncate(plain_len);
        Ok(in_out)
    }
}

/// Keyed hashes of opaque tokens: the database stores these, never the
/// tokens, so a database reader cannot present a stored token.
pub struct TokenHasher(hmac::Key);

impl std::fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHasher(..)")
    }
}

impl TokenHasher {
    pub fn hash(&self, token: &str) -> Vec<u8> {
        hmac::sign(&self.0, token.as_bytes()).as_ref().to_vec()
    }
}

/// A fresh 256-bit random token, URL-safe base64 without padding.
pub fn random_token() -> Result<String, SecretError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::fill(bytes.as_mut()).map_err(|_| SecretError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_binds_aad_and_key() {
        let master = MasterKey::generate().expect("random");
        let sealer = master.sealer(b"keys").expect("sealer");
        let sealed = sealer.seal(b"kid-1", b"private").expect("seal");
        assert_eq!(
            sealer.open(b"kid-1", &sealed).expect("open").as_slice(),
            b"private"
        );
        assert!(
            sealer.open(b"kid-2", &sealed).is_err(),
            "moved to another row"
        );
        let other = MasterKey::generate()
            .expect("random")
            .sealer(b"keys")
            .expect("sealer");
        assert!(other.open(b"kid-1", &sealed).is_err(), "wrong master key");
        let relabelled = master.sealer(b"other purpose").expect("sealer");
        assert!(
            relabelled.open(b"kid-1", &sealed).is_err(),
            "subkeys differ per label"
        );
    }

    #[test]
    fn master_key_file_is_created_private_and_reloaded() {
        let dir = std::env::temp_dir().join(format!("portcullis-mk-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("master.key");
        let first = MasterKey::load_or_create(&path).expect("create");
        let again = MasterKey::load_or_create(&path).expect("reload");
        assert_eq!(first.0.as_ref(), again.0.as_ref());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn random_tokens_are_256_bits() {
        let token = random_token().expect("random");
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).expect("b64").len(), 32);
        assert_ne!(token, random_token().expect("random"));
    }
}
