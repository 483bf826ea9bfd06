//! Sessions and refresh rotation: spend-and-replace in one transaction, the
//! grace retry that returns the very same pair, reuse detection that kills
//! the session, logout in every form, and password change.

use std::borrow::Cow;
use std::time::Duration;

use portcullis_token::{Claims, VerifyError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::refresh_batches::{Lookups, Rotations};
use super::secrets::{self, Sealer};
use super::{Auth, AuthError, TokenPair, now, validate};
use crate::store::{
    NewRefreshToken, RefreshContext, RefreshRecord, Revocation, RevocationKind, Rotation,
    SessionLife, Store,
};

/// HKDF label of the grace-pair key, derived from the presented refresh
/// token itself (never from its lookup hash): only someone holding the
/// token can decrypt the pair stored for its retry.
const GRACE_PAIR_LABEL: &[u8] = b"refresh-grace-pair";

/// A session as its owner sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub device_name: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
    pub current: bool,
}

/// Borrowed when sealed, owned when opened.
#[derive(Serialize, Deserialize)]
struct SealedPair<'a> {
    access_token: Cow<'a, str>,
    refresh_token: Cow<'a, str>,
    expires_in: u64,
}

fn grace_sealer(token: &str) -> Result<Sealer, AuthError> {
    Sealer::new(secrets::derive(token.as_bytes(), GRACE_PAIR_LABEL).as_ref())
        .map_err(|_| AuthError::Unavailable)
}

fn seal_pair(token: &str, sid: Uuid, pair: &TokenPair) -> Result<Vec<u8>, AuthError> {
    let plain = serde_json::to_vec(&SealedPair {
        access_token: Cow::Borrowed(&pair.access_token),
        refresh_token: Cow::Borrowed(&pair.refresh_token),
        expires_in: pair.expires_in,
    })
    .map_err(|_| AuthError::Unavailable)?;
    grace_sealer(token)?
        .seal(sid.as_bytes(), &plain)
        .map_err(|_| AuthError::Unavailable)
}

fn open_pair(token: &str, sid: Uuid, sealed: &[u8]) -> Option<TokenPair> {
    let plain = grace_sealer(token)
        .ok()?
        .open(sid.as_bytes(), sealed)
        .ok()?;
    let pair: SealedPair = serde_json::from_slice(&plain).ok()?;
    Some(TokenPair {
        access_token: pair.access_token.into_owned(),
        refresh_token: pair.refresh_token.into_owned(),
        token_type: "Bearer",
        expires_in: pair.expires_in,
        session_id: sid,
    })
}

impl<S: Store> Auth<S> {
    /// Until when a revocation written now must be kept: the last access
    /// token it covers expires within the lifetime, and verifiers allow a
    /// minute of skew beyond.
    /// `before` of a new user entry: the change's time rounded up to the
    /// next whole second, and past any earlier entry's `before` — tokens
    /// issued after that one carry `iat` = its `before`, and must be covered
    /// by this one.
    pub(crate) fn next_before(&self, user_id: Uuid, at: OffsetDateTime) -> i64 {
        let earlier = self
            .revocations
            .user_before(&user_id.to_string())
            .unwrap_or(i64::MIN);
        (at.unix_timestamp() + 1).max(earlier.saturating_add(1))
    }

    pub(crate) fn entry_expiry(&self, at: OffsetDateTime) -> i64 {
        at.unix_timestamp()
            + i64::try_from(self.access_ttl.as_secs()).unwrap_or(i64::MAX / 4)
            + portcullis_token::DEFAULT_LEEWAY
    }

    fn session_is_live(&self, session: &SessionLife, at: OffsetDateTime) -> bool {
        session.revoked_at.is_none()
            && session.expires_at > at
            && session.last_used_at + self.session_idle_timeout > at
    }

    /// `POST /api/auth/refresh`.
    pub async fn refresh(&self, token: &str) -> Result<TokenPair, AuthError> {
        let hash = self.refresh_hasher.hash(token);
        // A second pass only when a concurrent refresh won the race: the
        // token is then spent and the grace path answers.
        for _ in 0..2 {
            let at = now();
            let RefreshContext {
                token: record,
                session,
                user,
            } = self
                .refresh_lookups
                .submit(hash.clone(), || Lookups(self.store.clone()))
                .await
                .ok_or(AuthError::Unavailable)?
                .ok_or(AuthError::InvalidRefreshToken)?;
            if !self.session_is_live(&session, at) {
                return Err(AuthError::InvalidRefreshToken);
            }
            if record.spent_at.is_some() {
                // Boxed: the replay's futures (a session's revocation
                // among them) made every refresh's future 15 KB, moved and
                // allocated per request; 1.4 KB without them.
                return Box::pin(self.replay(token, &record, &session, user.id, at)).await;
            }
            if record.expires_at <= at || user.disabled {
                return Err(AuthError::InvalidRefreshToken);
            }
            let refresh_token = secrets::random_token().map_err(|_| AuthError::Unavailable)?;
            let pair = TokenPair {
                access_token: self.issue_access_token(&user, session.id, at)?,
                refresh_token,
                token_type: "Bearer",
                expires_in: self.access_ttl.as_secs(),
                session_id: session.id,
            };
            let rotation = Rotation {
                spent: hash.clone(),
                at,
                session_id: session.id,
                user_id: user.id,
                successor: NewRefreshToken {
                    hash: self.refresh_hasher.hash(&pair.refresh_token),
                    issued_at: at,
                    expires_at: (at + self.refresh_ttl).min(session.expires_at),
                },
                grace_until: at + self.refresh_grace,
                grace_pair: seal_pair(token, session.id, &pair)?,
            };
            match self
                .rotations
                .submit(rotation, || Rotations(self.store.clone()))
                .await
            {
                Some(true) => {
                    tracing::info!(target: "audit", event = "refresh", user_id = %user.id, session_id = %session.id);
                    return Ok(pair);
                }
                Some(false) => continue,
                None => return Err(AuthError::Unavailable),
            }
        }
        Err(AuthError::InvalidRefreshToken)
    }

    /// A spent token presented again: the same pair within the grace window
    /// (while its successor is unspent), otherwise reuse, which revokes the
    /// whole session.
    async fn replay(
        &self,
        token: &str,
        record: &RefreshRecord,
        session: &SessionLife,
        user_id: Uuid,
        at: OffsetDateTime,
    ) -> Result<TokenPair, AuthError> {
        let in_grace = record.grace_until.is_some_and(|until| at < until);
        // Both reads only when a grace answer is still possible.
        let sealed = match (&record.successor_hash, record.grace_id) {
            (Some(successor), Some(id)) if in_grace => {
                let successor_unspent = self
                    .store
                    .refresh_token(successor)
                    .await?
                    .is_some_and(|s| s.spent_at.is_none());
                if successor_unspent {
                    self.store.grace_pair(id, &record.hash).await?
                } else {
                    None
                }
            }
            _ => None,
        };
        let pair = sealed.and_then(|sealed| open_pair(token, session.id, &sealed));
        if let Some(pair) = pair {
            tracing::info!(target: "audit", event = "refresh_grace_replay", user_id = %user_id, session_id = %session.id);
            return Ok(pair);
        }
        self.revoke_one_session(session.id, None, at).await?;
        tracing::warn!(target: "audit", event = "refresh_token_reused", user_id = %user_id, session_id = %session.id);
        Err(AuthError::RefreshTokenReused)
    }

    pub(crate) async fn revoke_one_session(
        &self,
        sid: Uuid,
        user_id: Option<Uuid>,
        at: OffsetDateTime,
    ) -> Result<bool, AuthError> {
        let record = self
            .store
            .revoke_session(sid, user_id, at, self.entry_expiry(at))
            .await?;
        if let Some(record) = &record {
            self.revocations.apply_local(std::slice::from_ref(record));
            self.revocation_written.notify_one();
        }
        Ok(record.is_some())
    }

    /// Verifies an access token for logout: an expired one is fine as long
    /// as everything else about it holds.
    pub fn claims_for_logout(&self, token: &str) -> Result<Claims, AuthError> {
        match self
            .keys
            .verify(token, &self.validator, now().unix_timestamp())
        {
            Ok(claims) => Ok(claims),
            Err(VerifyError::Expired(claims)) => Ok(*claims),
            Err(VerifyError::Invalid(_)) => Err(AuthError::InvalidToken),
        }
    }

    /// The session of a refresh token (spent or not), for cookie mode's CSRF
    /// check before the token is used.
    pub async fn session_of_refresh_token(&self, token: &str) -> Result<Option<Uuid>, AuthError> {
        Ok(self
            .store
            .refresh_token(&self.refresh_hasher.hash(token))
            .await?
            .map(|r| r.session_id))
    }

    /// `POST /api/auth/logout`: by refresh token (body or cookie) when one
    /// is given, else by access token, expired or not. Idempotent.
    pub async fn logout(
        &self,
        refresh_token: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<(), AuthError> {
        let at = now();
        let (sid, user_id) = match (refresh_token, access_token) {
            (Some(token), _) => {
                let record = self
                    .store
                    .refresh_token(&self.refresh_hasher.hash(token))
                    .await?
                    .ok_or(AuthError::InvalidRefreshToken)?;
                (record.session_id, None)
            }
            (None, Some(token)) => {
                let claims = self.claims_for_logout(token)?;
                let sid = claims.sid.parse().map_err(|_| AuthError::InvalidToken)?;
                let sub = claims.sub.parse().map_err(|_| AuthError::InvalidToken)?;
                (sid, Some(sub))
            }
            (None, None) => return Err(AuthError::MissingToken),
        };
        self.revoke_one_session(sid, user_id, at).await?;
        let owner = match user_id {
            Some(id) => Some(id),
            None => self.store.session(sid).await?.map(|s| s.user_id),
        };
        tracing::info!(target: "audit", event = "logout", user_id = owner.map(|u| u.to_string()), session_id = %sid);
        Ok(())
    }

    /// `POST /api/auth/logout-all`: one `sub`/`before` entry covers every
    /// token of the user, so no request ever needs a user lookup.
    pub async fn logout_all(&self, claims: &Claims) -> Result<(), AuthError> {
        let user = self.current_user(claims).await?;
        let at = now();
        self.revoke_user(user.id, None, at).await?;
        tracing::info!(target: "audit", event = "logout_all", user_id = %user.id);
        Ok(())
    }

    /// Revokes the user's sessions; with `except`, all but that one (by
    /// `sid` entries), otherwise all of them and every token (one `sub`
    /// entry).
    pub async fn revoke_user(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        at: OffsetDateTime,
    ) -> Result<(), AuthError> {
        let expires = self.entry_expiry(at);
        let user_entry = except.is_none().then(|| Revocation {
            kind: RevocationKind::User,
            subject: user_id.to_string(),
            before: Some(self.next_before(user_id, at)),
            expires: Some(expires),
        });
        let records = self
            .store
            .revoke_user_sessions(user_id, except, at, expires, user_entry)
            .await?;
        self.revocations.apply_local(&records);
        self.revocation_written.notify_one();
        Ok(())
    }

    /// `GET /api/auth/sessions`: live sessions only.
    pub async fn sessions(&self, claims: &Claims) -> Result<Vec<SessionView>, AuthError> {
        let user = self.current_user(claims).await?;
        self.sessions_of(user.id, Some(&claims.sid)).await
    }

    /// A user's live sessions, `current` marking the one with `current_sid`.
    pub(crate) async fn sessions_of(
        &self,
        user_id: Uuid,
        current_sid: Option<&str>,
    ) -> Result<Vec<SessionView>, AuthError> {
        let at = now();
        Ok(self
            .store
            .live_sessions(user_id, at)
            .await?
            .into_iter()
            .filter(|s| self.session_is_live(&s.life(), at))
            .map(|s| SessionView {
                current: current_sid.is_some_and(|c| s.id.to_string() == c),
                id: s.id,
                device_name: s.device_name,
                user_agent: s.user_agent,
                ip: s.ip,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
            })
            .collect())
    }

    /// `DELETE /api/auth/sessions/{id}`: another user's or an unknown id is
    /// `NotFound`.
    pub async fn delete_session(&self, claims: &Claims, id: &str) -> Result<(), AuthError> {
        let user = self.current_user(claims).await?;
        let sid: Uuid = id.parse().map_err(|_| AuthError::NotFound)?;
        let at = now();
        let live = self
            .store
            .session(sid)
            .await?
            .is_some_and(|s| s.user_id == user.id && self.session_is_live(&s.life(), at));
        if !live || !self.revoke_one_session(sid, Some(user.id), at).await? {
            return Err(AuthError::NotFound);
        }
        tracing::info!(target: "audit", event = "session_deleted", user_id = %user.id, session_id = %sid);
        Ok(())
    }

    /// `POST /api/auth/password`: every other session is revoked. A wrong
    /// current password counts as a failed login.
    pub async fn change_password(
        &self,
        claims: &Claims,
        current_password: &str,
        new_password: &str,
        client: &super::ClientContext,
    ) -> Result<(), AuthError> {
        let user = self.reconfirmed(claims, current_password, client).await?;
        validate::check_password(new_password)?;
        let hash = self.passwords.hash(new_password).await?;
        let at = now();
        self.store.set_password_hash(user.id, &hash, at).await?;
        // Every other session ends (all of them if the sid is unreadable).
        self.revoke_user(user.id, claims.sid.parse().ok(), at)
            .await?;
        self.after_password_change(&user).await?;
        tracing::info!(target: "audit", event = "password_changed", user_id = %user.id);
        Ok(())
    }

    /// Deletes ended sessions, their token hashes and expired revocations.
    pub async fn prune(&self) -> Result<crate::store::Pruned, AuthError> {
        let at = now();
        self.revocations.prune(at.unix_timestamp());
        Ok(self.store.prune(at, self.session_idle_timeout).await?)
    }

    /// Reads revocations committed since the confirmed cursor (every instance
    /// sharing the database learns of them this way).
    pub async fn poll_revocations(&self) -> Result<usize, AuthError> {
        poll_revocations(&self.store, &self.revocations, &self.keys).await
    }

    pub fn refresh_grace(&self) -> Duration {
        self.refresh_grace
    }
}

/// Reads revocations committed after `revocations`' confirmed cursor into
/// it; a free function so start-up can load them before the rest of
/// [`Auth`] exists.
pub async fn poll_revocations<S: Store>(
    store: &S,
    revocations: &super::revocation::Revocations,
    keys: &super::keys::Keys,
) -> Result<usize, AuthError> {
    let mut total = 0;
    loop {
        let batch = store
            .revocations_since(revocations.confirmed(), now().unix_timestamp(), 10_000)
            .await?;
        let done = batch.len() < 10_000;
        total += batch.len();
        revocations.apply_confirmed(&batch);
        // A revoked key must leave this instance's ring at once.
        let key_revoked = batch
            .iter()
            .any(|r| r.revocation.kind == RevocationKind::Key);
        if key_revoked && let Err(e) = keys.reload(store, now()).await {
            tracing::warn!(error = %e, "reloading keys after a key revocation failed");
        }
        if done {
            return Ok(total);
        }
    }
}
