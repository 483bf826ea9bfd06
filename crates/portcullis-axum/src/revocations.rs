//! The revocation set, fed by the server's `/.well-known/revocations`.

use std::collections::HashMap;

use portcullis_token::Claims;
use serde::Deserialize;

/// One feed entry (API.md). Untagged, most specific shape first.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub(crate) enum Entry {
    User { sub: String, before: i64, exp: i64 },
    Session { sid: String, exp: i64 },
    Token { jti: String, exp: i64 },
    Key { kid: String },
}

#[derive(Debug, Deserialize)]
pub(crate) struct FeedPage {
    pub cursor: String,
    pub reset: bool,
    pub revoked: Vec<Entry>,
}

#[derive(Debug, Default)]
pub(crate) struct RevocationSet {
    sessions: HashMap<String, i64>,
    tokens: HashMap<String, i64>,
    /// sub → (before, exp); the latest `before` wins.
    users: HashMap<String, (i64, i64)>,
}

impl RevocationSet {
    /// Applies entries; returns the key ids among them (the caller drops
    /// those keys and refetches the JWKS).
    pub fn apply(&mut self, entries: Vec<Entry>) -> Vec<String> {
        let mut kids = Vec::new();
        for entry in entries {
            match entry {
                Entry::Session { sid, exp } => {
                    self.sessions.insert(sid, exp);
                }
                Entry::Token { jti, exp } => {
                    self.tokens.insert(jti, exp);
                }
                Entry::User { sub, before, exp } => {
                    let slot = self.users.entry(sub).or_insert((before, exp));
                    *slot = (slot.0.max(before), slot.1.max(exp));
                }
                Entry::Key { kid } => kids.push(kid),
            }
        }
        kids
    }

    /// O(1) whatever the set's size: three hash lookups.
    pub fn is_revoked(&self, claims: &Claims) -> bool {
        self.sessions.contains_key(&claims.sid)
            || self.tokens.contains_key(&claims.jti)
            || self
                .users
                .get(&claims.sub)
                .is_some_and(|(before, _)| claims.iat < *before)
    }

    /// Drops entries no live token can match any more.
    pub fn prune(&mut self, now: i64) {
        self.sessions.retain(|_, exp| *exp > now);
        self.tokens.retain(|_, exp| *exp > now);
        self.users.retain(|_, (_, exp)| *exp > now);
    }

    pub fn len(&self) -> usize {
        self.sessions.len() + self.tokens.len() + self.users.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, sid: &str, jti: &str, iat: i64) -> Claims {
        Claims {
            iss: "i".into(),
            sub: sub.into(),
            aud: portcullis_token::Audience::from("a"),
            exp: 10_000,
            iat,
            nbf: None,
            jti: jti.into(),
            sid: sid.into(),
            email: String::new(),
            name: String::new(),
            roles: Vec::new(),
        }
    }

    #[test]
    fn every_entry_kind_parses_and_covers_what_it_should() {
        let page: FeedPage = serde_json::from_str(
            r#"{"cursor":"e-4","more":false,"reset":true,"revoked":[
                {"sid":"s1","exp":100},{"jti":"j1","exp":100},
                {"sub":"u1","before":50,"exp":100},{"kid":"k1"}]}"#,
        )
        .expect("page");
        let mut set = RevocationSet::default();
        assert_eq!(set.apply(page.revoked), vec!["k1".to_owned()]);
        assert!(set.is_revoked(&claims("u", "s1", "j", 1)));
        assert!(set.is_revoked(&claims("u", "s", "j1", 1)));
        assert!(set.is_revoked(&claims("u1", "s", "j", 49)));
        assert!(
            !set.is_revoked(&claims("u1", "s", "j", 50)),
            "issued at `before`: not covered"
        );
        assert!(!set.is_revoked(&claims("u", "s", "j", 1)));
        set.prune(100);
        assert_eq!(set.len(), 0);
    }
}
