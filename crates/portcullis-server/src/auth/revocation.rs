//! The live part of the revocation list, in memory: an O(1) check per
//! request, and the source of the revocations feed.
//!
//! Two ways in. Entries this instance writes are applied at once (so its own
//! logout is enforced before the response leaves), and the poller reads the
//! database from its cursor. Only the poller advances the *confirmed*
//! cursor, and the feed publishes only confirmed entries: a reader can never
//! be handed a cursor past an entry it has not seen.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use portcullis_token::Claims;
use serde::Serialize;
use tokio::sync::watch;

use crate::store::{Revocation, RevocationKind, RevocationRecord};

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<String, i64>,
    tokens: HashMap<String, i64>,
    /// sub → (before, expires): the latest `before` wins.
    users: HashMap<String, (i64, i64)>,
    keys: HashMap<String, Option<i64>>,
    /// Every live entry by id, for the feed.
    log: BTreeMap<i64, Revocation>,
    confirmed: i64,
}

/// One entry as the feed serialises it (API.md).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(untagged)]
pub enum FeedEntry {
    Session { sid: String, exp: i64 },
    Token { jti: String, exp: i64 },
    User { sub: String, before: i64, exp: i64 },
    Key { kid: String },
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FeedPage {
    pub cursor: String,
    pub more: bool,
    pub reset: bool,
    pub revoked: Vec<FeedEntry>,
}

#[derive(Debug)]
pub struct Revocations {
    state: RwLock<State>,
    /// Part of every cursor: a cursor of another database is unknown here.
    epoch: String,
    confirmed_tx: watch::Sender<i64>,
}

fn feed_entry(r: &Revocation) -> FeedEntry {
    let exp = r.expires.unwrap_or(i64::MAX);
    match r.kind {
        RevocationKind::Session => FeedEntry::Session {
            sid: r.subject.clone(),
            exp,
        },
        RevocationKind::Token => FeedEntry::Token {
            jti: r.subject.clone(),
            exp,
        },
        RevocationKind::User => FeedEntry::User {
            sub: r.subject.clone(),
            before: r.before.unwrap_or(0),
            exp,
        },
        RevocationKind::Key => FeedEntry::Key {
            kid: r.subject.clone(),
        },
    }
}

impl Revocations {
    pub fn new(epoch: String) -> Self {
        Self {
            state: RwLock::new(State::default()),
            epoch,
            confirmed_tx: watch::channel(0).0,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies entries this instance just wrote, before the poller sees them.
    pub fn apply_local(&self, records: &[RevocationRecord]) {
        let mut state = self.write();
        for record in records {
            insert(&mut state, record);
            let kind = record.revocation.kind.as_str();
            metrics::counter!(crate::metrics::REVOCATIONS, "kind" => kind).increment(1);
        }
    }

    /// Applies what the poller read from the database after the confirmed
    /// cursor, and advances it.
    pub fn apply_confirmed(&self, records: &[RevocationRecord]) {
        let confirmed = {
            let mut state = self.write();
            for record in records {
                insert(&mut state, record);
                state.confirmed = state.confirmed.max(record.id);
            }
            state.confirmed
        };
        self.confirmed_tx.send_if_modified(|current| {
            let changed = *current != confirmed;
            *current = confirmed;
            changed
        });
    }

    pub fn confirmed(&self) -> i64 {
        self.read().confirmed
    }

    /// Whether a verified token is covered by a revocation.
    pub fn is_revoked(&self, claims: &Claims, kid: Option<&str>) -> bool {
        let state = self.read();
        state.sessions.contains_key(&claims.sid)
            || state.tokens.contains_key(&claims.jti)
            || state
                .users
                .get(&claims.sub)
                .is_some_and(|(before, _)| claims.iat < *before)
            || kid.is_some_and(|k| state.keys.contains_key(k))
    }

    /// The latest `before` of a user entry: tokens issued for that user must
    /// carry `iat` at or after it.
    pub fn user_before(&self, sub: &str) -> Option<i64> {
        self.read().users.get(sub).map(|(before, _)| *before)
    }

    /// Drops entries that no longer cover any unexpired token.
    pub fn prune(&self, now: i64) {
        let mut state = self.write();
        state.sessions.retain(|_, exp| *exp > now);
        state.tokens.retain(|_, exp| *exp > now);
        state.users.retain(|_, (_, exp)| *exp > now);
        state.keys.retain(|_, exp| exp.is_none_or(|e| e > now));
        state.log.retain(|_, r| r.expires.is_none_or(|e| e > now));
    }

    pub fn len(&self) -> usize {
        self.read().log.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn cursor(&self, id: i64) -> String {
        format!("{}-{id}", self.epoch)
    }

    /// Parses a cursor of this database; `None` for any other string.
    pub fn parse_cursor(&self, cursor: &str) -> Option<i64> {
        let (epoch, id) = cursor.rsplit_once('-')?;
        let id: i64 = id.parse().ok()?;
        (epoch == self.epoch && id >= 0 && id <= self.confirmed()).then_some(id)
    }

    /// One page of the feed after `since` (a snapshot when `None`).
    pub fn page(&self, since: Option<i64>, reset: bool, limit: usize) -> FeedPage {
        let state = self.read();
        let after = since.unwrap_or(i64::MIN);
        let published = state
            .log
            .range(..=state.confirmed)
            .filter(|(id, _)| **id > after);
        let mut revoked = Vec::new();
        let mut last = None;
        let mut more = false;
        for (id, entry) in published {
            if revoked.len() == limit {
                more = true;
                break;
            }
            revoked.push(feed_entry(entry));
            last = Some(*id);
        }
        // A full page ends at its last entry; otherwise the reader is up to
        // date with everything confirmed.
        let cursor_id = match (more, last) {
            (true, Some(id)) => id,
            _ => state.confirmed.max(since.unwrap_or(0)),
        };
        FeedPage {
            cursor: self.cursor(cursor_id),
            more,
            reset,
            revoked,
        }
    }

    /// A receiver that changes whenever the confirmed cursor moves.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.confirmed_tx.subscribe()
    }
}

fn insert(state: &mut State, record: &RevocationRecord) {
    let r = &record.revocation;
    let exp = r.expires.unwrap_or(i64::MAX);
    match r.kind {
        RevocationKind::Session => {
            let e = state.sessions.entry(r.subject.clone()).or_insert(exp);
            *e = (*e).max(exp);
        }
        RevocationKind::Token => {
            let e = state.tokens.entry(r.subject.clone()).or_insert(exp);
            *e = (*e).max(exp);
        }
        RevocationKind::User => {
            let before = r.before.unwrap_or(0);
            let e = state
                .users
                .entry(r.subject.clone())
                .or_insert((before, exp));
            *e = (e.0.max(before), e.1.max(exp));
        }
        RevocationKind::Key => {
            state.keys.insert(r.subject.clone(), r.expires);
        }
    }
    state.log.insert(record.id, r.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        id: i64,
        kind: RevocationKind,
        subject: &str,
        before: Option<i64>,
        expires: i64,
    ) -> RevocationRecord {
        RevocationRecord {
            id,
            revocation: Revocation {
                kind,
                subject: subject.into(),
                before,
                expires: Some(expires),
            },
        }
    }

    fn claims(sub: &str, sid: &str, jti: &str, iat: i64) -> Claims {
        Claims {
            iss: "i".into(),
            sub: sub.into(),
            aud: portcullis_token::Audience::from("a"),
            exp: iat + 900,
            iat,
            nbf: None,
            jti: jti.into(),
            sid: sid.into(),
            email: String::new(),
            name: String::new(),
            roles: vec![],
        }
    }

    #[test]
    fn each_kind_covers_what_it_should() {
        let set = Revocations::new("e".into());
        set.apply_local(&[
            record(1, RevocationKind::Session, "s1", None, 2000),
            record(2, RevocationKind::Token, "j1", None, 2000),
            record(3, RevocationKind::User, "u1", Some(1000), 2000),
        ]);
        assert!(set.is_revoked(&claims("u", "s1", "j", 1), None));
        assert!(set.is_revoked(&claims("u", "s", "j1", 1), None));
        assert!(set.is_revoked(&claims("u1", "s", "j", 999), None));
        assert!(
            !set.is_revoked(&claims("u1", "s", "j", 1000), None),
            "iat at before is not covered"
        );
        assert!(!set.is_revoked(&claims("u", "s", "j", 1), None));
        assert_eq!(set.user_before("u1"), Some(1000));
        set.prune(2000);
        assert!(
            !set.is_revoked(&claims("u", "s1", "j", 1), None),
            "expired entries are dropped"
        );
    }

    #[test]
    fn the_feed_publishes_only_confirmed_entries() {
        let set = Revocations::new("e".into());
        set.apply_local(&[record(2, RevocationKind::Session, "s2", None, 9999)]);
        let page = set.page(None, false, 10);
        assert!(page.revoked.is_empty(), "entry 1 may still be in flight");
        assert_eq!(page.cursor, "e-0");
        set.apply_confirmed(&[
            record(1, RevocationKind::Session, "s1", None, 9999),
            record(2, RevocationKind::Session, "s2", None, 9999),
        ]);
        let page = set.page(None, false, 1);
        assert_eq!(page.revoked.len(), 1);
        assert!(page.more);
        assert_eq!(page.cursor, "e-1");
        let next = set.page(set.parse_cursor(&page.cursor), false, 10);
        assert_eq!(
            next.revoked,
            vec![FeedEntry::Session {
                sid: "s2".into(),
                exp: 9999
            }]
        );
        assert!(!next.more);
        assert_eq!(next.cursor, "e-2");
        assert_eq!(set.parse_cursor("other-1"), None);
        assert_eq!(
            set.parse_cursor("e-3"),
            None,
            "a cursor from the future is unknown"
        );
    }
}
