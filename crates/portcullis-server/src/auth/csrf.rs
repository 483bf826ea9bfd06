//! CSRF tokens for cookie mode: `nonce.HMAC(key, sid ‖ nonce)`, so a token
//! is bound to one session and a cookie planted from a sibling subdomain
//! (which cannot compute the HMAC) never validates.

use aws_lc_rs::{constant_time, hmac, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

pub struct CsrfKey(hmac::Key);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(..)")
    }
}

impl CsrfKey {
    pub fn new(key: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    fn tag(&self, sid: Uuid, nonce: &[u8]) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(sid.as_bytes());
        context.update(nonce);
        context.sign()
    }

    /// A fresh token for the session (rotated at login and refresh).
    pub fn issue(&self, sid: Uuid) -> String {
        let mut nonce = [0u8; 16];
        // The system generator does not fail on supported platforms; a zero
        // nonce would still give a token bound to the session.
        let _ = rand::fill(&mut nonce);
        let tag = self.tag(sid, &nonce);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// Whether `token` was issued for `sid` (constant-time comparison).
    pub fn check(&self, sid: Uuid, token: &str) -> bool {
        let Some((nonce, tag)) = token.split_once('.') else {
            return false;
        };
        let (Ok(nonce), Ok(tag)) = (URL_SAFE_NO_PAD.decode(nonce), URL_SAFE_NO_PAD.decode(tag))
        else {
            return false;
        };
        constant_time::verify_slices_are_equal(self.tag(sid, &nonce).as_ref(), &tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_their_session_and_key() {
        let key = CsrfKey::new(&[1; 32]);
        let sid = Uuid::new_v4();
        let token = key.issue(sid);
        assert!(key.check(sid, &token));
        assert!(!key.check(Uuid::new_v4(), &token), "another session");
        assert!(!CsrfKey::new(&[2; 32]).check(sid, &token), "another key");
        assert_ne!(key.issue(sid), token, "a fresh nonce each time");
        for bad in ["", ".", "abc", "a.b", &format!("{token}x")] {
            assert!(!key.check(sid, bad), "{bad:?}");
        }
    }
}
