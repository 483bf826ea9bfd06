//! Persistence behind the [`Store`] trait. One implementation per database;
//! the rest of the server sees only these records and errors.

mod postgres;
mod rows;
mod sql;
mod sqlite;

use std::future::Future;

use time::OffsetDateTime;
use uuid::Uuid;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write (e.g. the e-mail is taken).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The database did not answer or failed; the caller answers 503.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value this code cannot read (a bug or a foreign write).
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    /// PHC string (argon2id) or an imported bcrypt hash; `None` until the
    /// user sets a password.
    pub password_hash: Option<String>,
    pub roles: Vec<String>,
    pub email_verified: bool,
    pub disabled: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl UserRecord {
    /// A new account at `at`: fresh id, enabled, address not yet verified.
    pub fn new(
        email: String,
        name: String,
        password_hash: Option<String>,
        roles: Vec<String>,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            email,
            name,
            password_hash,
            roles,
            email_verified: false,
            disabled: false,
            created_at: at,
            updated_at: at,
        }
    }

    pub fn holder(&self) -> TokenHolder {
        TokenHolder {
            id: self.id,
            email: self.email.clone(),
            name: self.name.clone(),
            roles: self.roles.clone(),
            disabled: self.disabled,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub device_name: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
    /// `SESSION_MAX_LIFETIME` after login.
    pub expires_at: OffsetDateTime,
}

/// The first refresh token of a session, stored as its keyed hash only.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub hash: Vec<u8>,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub device_name: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_used_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

impl SessionRecord {
    pub fn life(&self) -> SessionLife {
        SessionLife {
            id: self.id,
            last_used_at: self.last_used_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    pub hash: Vec<u8>,
    pub session_id: Uuid,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub spent_at: Option<OffsetDateTime>,
    pub successor_hash: Option<Vec<u8>>,
    pub grace_until: Option<OffsetDateTime>,
    /// Where the pair this token was replaced with is kept while a replay
    /// could still get it (`refresh_grace`, pruned after the window).
    pub grace_id: Option<i64>,
}

/// What a login needs to know about the user's other live sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtherSessions {
    pub any: bool,
    pub same_user_agent: bool,
}

/// A refresh token with what a refresh decides on of its session and the
/// session's user, read in one query. Only those columns: sqlx copies and
/// decodes every value of every row, and this is the hottest read there is.
#[derive(Debug, Clone)]
pub struct RefreshContext {
    pub token: RefreshRecord,
    pub session: SessionLife,
    pub user: TokenHolder,
}

/// The part of a session that says whether it is still live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLife {
    pub id: Uuid,
    pub last_used_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// What an access token says about its user, and whether the user may have
/// one at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHolder {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    pub disabled: bool,
}

/// Spending a refresh token: everything the one transaction writes,
/// its `refresh` audit event included (see
/// [`crate::audit::STORED_WITH_THEIR_CHANGE`]).
#[derive(Debug, Clone)]
pub struct Rotation {
    /// Lookup hash of the token being spent.
    pub spent: Vec<u8>,
    pub at: OffsetDateTime,
    pub session_id: Uuid,
    /// The session's user, for the audit event.
    pub user_id: Uuid,
    pub successor: NewRefreshToken,
    pub grace_until: OffsetDateTime,
    /// The new pair, sealed under a key derived from the spent token; kept
    /// in `refresh_grace` for replays within `grace_until`.
    pub grace_pair: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationKind {
    /// One session (`sid`).
    Session,
    /// One token (`jti`).
    Token,
    /// Every token of a user (`sub`) issued before `before`.
    User,
    /// A signing key (`kid`).
    Key,
}

impl RevocationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "sid",
            Self::Token => "jti",
            Self::User => "sub",
            Self::Key => "kid",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "sid" => Self::Session,
            "jti" => Self::Token,
            "sub" => Self::User,
            "kid" => Self::Key,
            _ => return None,
        })
    }
}

/// A revocation entry; times are Unix seconds as the feed carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub kind: RevocationKind,
    pub subject: String,
    /// `User` entries: tokens with `iat` < `before` are revoked.
    pub before: Option<i64>,
    /// When the entry stops mattering (the last covered token's expiry).
    pub expires: Option<i64>,
}

/// A stored revocation with its feed position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRecord {
    pub id: i64,
    pub revocation: Revocation,
}

/// Failed logins of one (account, address) pair, or of an account from
/// every address (`address` empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRecord {
    pub failures: i64,
    pub window_start: OffsetDateTime,
    pub locked_until: Option<OffsetDateTime>,
    pub last_attempt: OffsetDateTime,
}

/// A token sent by mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailTokenRecord {
    pub hash: Vec<u8>,
    /// `reset`, `verify` or `email`.
    pub purpose: String,
    pub user_id: Uuid,
    /// For `email`: the address being confirmed.
    pub new_email: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

/// Which audit events to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub user_id: Option<String>,
    pub kind: Option<String>,
    pub since: Option<OffsetDateTime>,
    /// The cursor: events with a smaller id.
    pub before_id: Option<i64>,
}

/// What the retention job deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub sessions: u64,
    pub refresh_tokens: u64,
    pub revocations: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: String,
    /// PKCS#8 DER sealed under the master key, with the kid as AAD.
    pub sealed_private_key: Vec<u8>,
    pub created_at: OffsetDateTime,
    /// When this key starts signing (a rotated-in key is published first).
    pub signing_from: OffsetDateTime,
    /// After this the key no longer signs or verifies and leaves the JWKS.
    pub retire_after: Option<OffsetDateTime>,
}

/// Every storage operation the server needs. Futures are `Send` so handlers
/// can await them on the multi-threaded runtime.
pub trait Store: Clone + Send + Sync + 'static {
    /// Whether the database answers (readiness).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Inserts a user; `Conflict` when the e-mail is taken.
    fn create_user(&self, user: &UserRecord)
    -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Inserts each user whose e-mail is free, in one transaction; for each,
    /// whether it was inserted (`false`: the address was taken already).
    fn import_users(
        &self,
        users: &[UserRecord],
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;

    fn user_by_email(
        &self,
        email: &str,
    ) -> impl Future<Output = Result<Option<UserRecord>, StoreError>> + Send;

    fn user_by_id(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<UserRecord>, StoreError>> + Send;

    fn set_password_hash(
        &self,
        user_id: Uuid,
        hash: &str,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Opens a session and stores its first refresh token, atomically.
    fn create_session(
        &self,
        session: &NewSession,
        refresh: &NewRefreshToken,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn session(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<SessionRecord>, StoreError>> + Send;

    /// Whether the user has live sessions other than `except`, and whether
    /// one of them has this user agent (`None` matching `None`): two
    /// indexed existence checks, so a login costs the same whatever the
    /// number of sessions.
    fn other_sessions(
        &self,
        user_id: Uuid,
        except: Uuid,
        user_agent: Option<&str>,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<OtherSessions, StoreError>> + Send;

    /// The user's sessions that are neither revoked nor past `expires_at`
    /// (idle expiry is the caller's rule), oldest first.
    fn live_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<SessionRecord>, StoreError>> + Send;

    fn refresh_token(
        &self,
        hash: &[u8],
    ) -> impl Future<Output = Result<Option<RefreshRecord>, StoreError>> + Send;

    /// The sealed pair kept for a replay of the spent token `spent` within
    /// its grace window (`None` once pruned).
    fn grace_pair(
        &self,
        id: i64,
        spent: &[u8],
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// The refresh tokens with these hashes, each with its session and the
    /// session's user, one row per hash found (a hash given twice is found
    /// twice), in any order; a token is missing when any of the three is
    /// gone.
    fn refresh_contexts(
        &self,
        hashes: &[Vec<u8>],
    ) -> impl Future<Output = Result<Vec<RefreshContext>, StoreError>> + Send;

    /// Spends each rotation's token and stores its successor, all in one
    /// transaction; per rotation `false` (and nothing written for it) when
    /// its token was already spent, so that of concurrent refreshes exactly
    /// one wins.
    fn rotate_all(
        &self,
        rotations: &[Rotation],
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;

    /// Revokes one session (of `user_id`, when given) and records a `sid`
    /// entry expiring at `expires`; `None` when there was no such live
    /// session.
    fn revoke_session(
        &self,
        id: Uuid,
        user_id: Option<Uuid>,
        at: OffsetDateTime,
        expires: i64,
    ) -> impl Future<Output = Result<Option<RevocationRecord>, StoreError>> + Send;

    /// Revokes the user's sessions (all, or all but `except`). With
    /// `user_entry`, writes that one `sub` entry; otherwise one `sid` entry
    /// per revoked session, expiring at `expires`.
    fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        at: OffsetDateTime,
        expires: i64,
        user_entry: Option<Revocation>,
    ) -> impl Future<Output = Result<Vec<RevocationRecord>, StoreError>> + Send;

    /// Live entries (not expired at `now`) with `id > after`, in id order.
    fn revocations_since(
        &self,
        after: i64,
        now: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RevocationRecord>, StoreError>> + Send;

    /// A random value fixed when the database was created.
    fn feed_epoch(&self) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// Deletes what can no longer matter: ended sessions (revoked, expired,
    /// or idle longer than `idle_timeout`) with their refresh tokens, and
    /// expired revocation entries.
    fn prune(
        &self,
        now: OffsetDateTime,
        idle_timeout: std::time::Duration,
    ) -> impl Future<Output = Result<Pruned, StoreError>> + Send;

    fn login_failures(
        &self,
        account: &str,
        address: &str,
    ) -> impl Future<Output = Result<Option<FailureRecord>, StoreError>> + Send;

    fn put_login_failures(
        &self,
        account: &str,
        address: &str,
        record: &FailureRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets failures of one pair, or (with `None`) every lock-out of the
    /// account.
    fn clear_login_failures(
        &self,
        account: &str,
        address: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a new mail token and, in the same transaction, drops the
    /// user's unused tokens of the same purpose (a newer one supersedes).
    fn replace_mail_token(
        &self,
        token: &MailTokenRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn mail_token(
        &self,
        hash: &[u8],
    ) -> impl Future<Output = Result<Option<MailTokenRecord>, StoreError>> + Send;

    /// Marks the token used; `false` when it was used or expired already.
    fn use_mail_token(
        &self,
        hash: &[u8],
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Drops the user's unused tokens of `purpose` (e.g. reset tokens when
    /// the password changes).
    fn drop_mail_tokens(
        &self,
        user_id: Uuid,
        purpose: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn set_email_verified(
        &self,
        user_id: Uuid,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Changes the address (verified); `Conflict` when it is taken.
    fn set_email(
        &self,
        user_id: Uuid,
        email: &str,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn delete_user(&self, user_id: Uuid) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A page of users by id (UUIDv7, so by creation), after `after`,
    /// optionally those whose e-mail contains `email`.
    fn users_page(
        &self,
        email: Option<&str>,
        after: Option<Uuid>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<UserRecord>, StoreError>> + Send;

    fn set_roles(
        &self,
        user_id: Uuid,
        roles: &[String],
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn set_disabled(
        &self,
        user_id: Uuid,
        disabled: bool,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records a revocation entry on its own (e.g. a role change revokes
    /// the access tokens but not the sessions).
    fn add_revocation(
        &self,
        revocation: &Revocation,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<RevocationRecord, StoreError>> + Send;

    /// Retires a key at once and records a `kid` entry, in one transaction.
    fn revoke_signing_key(
        &self,
        kid: &str,
        at: OffsetDateTime,
        expires: i64,
    ) -> impl Future<Output = Result<Option<RevocationRecord>, StoreError>> + Send;

    /// Stores events in one statement (the audit writer sends what has
    /// queued up since its last write).
    fn insert_audit_events(
        &self,
        events: &[crate::audit::AuditEvent],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Audit events, newest first, with `id < before` when given.
    fn audit_page(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<crate::audit::AuditEvent>, StoreError>> + Send;

    /// Deletes audit events older than `before`.
    fn prune_audit(
        &self,
        before: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// How many (account, address) pairs of the account are locked at `at`.
    fn locked_pairs(
        &self,
        account: &str,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Enabled users with the `admin` role.
    fn count_admins(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Sessions neither revoked nor past `expires_at`, all users together.
    fn count_live_sessions(
        &self,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    fn signing_keys(&self) -> impl Future<Output = Result<Vec<KeyRecord>, StoreError>> + Send;

    /// Sets `retire_after` on every key but `keep` that has none yet.
    fn retire_signing_keys(
        &self,
        keep: &str,
        retire_after: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn insert_signing_key(
        &self,
        key: &KeyRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The store chosen at start: SQLite by default, PostgreSQL with
/// `DATABASE_URL`.
#[derive(Debug, Clone)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl AnyStore {
    pub async fn close(&self) {
        match self {
            Self::Sqlite(s) => s.close().await,
            Self::Postgres(s) => s.close().await,
        }
    }
}

/// Forwards each `Store` method to the backend in use.
macro_rules! forward {
    ($( fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        impl Store for AnyStore {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        Self::Sqlite(s) => s.$name($($arg),*).await,
                        Self::Postgres(s) => s.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

forward! {
    fn ping(&self) -> Result<(), StoreError>;
    fn create_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    fn import_users(&self, users: &[UserRecord]) -> Result<Vec<bool>, StoreError>;
    fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError>;
    fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError>;
    fn set_password_hash(&self, user_id: Uuid, hash: &str, at: OffsetDateTime) -> Result<(), StoreError>;
    fn create_session(&self, session: &NewSession, refresh: &NewRefreshToken) -> Result<(), StoreError>;
    fn session(&self, id: Uuid) -> Result<Option<SessionRecord>, StoreError>;
    fn other_sessions(&self, user_id: Uuid, except: Uuid, user_agent: Option<&str>, now: OffsetDateTime) -> Result<OtherSessions, StoreError>;
    fn live_sessions(&self, user_id: Uuid, now: OffsetDateTime) -> Result<Vec<SessionRecord>, StoreError>;
    fn refresh_token(&self, hash: &[u8]) -> Result<Option<RefreshRecord>, StoreError>;
    fn grace_pair(&self, id: i64, spent: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    fn refresh_contexts(&self, hashes: &[Vec<u8>]) -> Result<Vec<RefreshContext>, StoreError>;
    fn rotate_all(&self, rotations: &[Rotation]) -> Result<Vec<bool>, StoreError>;
    fn revoke_session(&self, id: Uuid, user_id: Option<Uuid>, at: OffsetDateTime, expires: i64) -> Result<Option<RevocationRecord>, StoreError>;
    fn revoke_user_sessions(&self, user_id: Uuid, except: Option<Uuid>, at: OffsetDateTime, expires: i64, user_entry: Option<Revocation>) -> Result<Vec<RevocationRecord>, StoreError>;
    fn revocations_since(&self, after: i64, now: i64, limit: u32) -> Result<Vec<RevocationRecord>, StoreError>;
    fn feed_epoch(&self) -> Result<String, StoreError>;
    fn prune(&self, now: OffsetDateTime, idle_timeout: std::time::Duration) -> Result<Pruned, StoreError>;
    fn login_failures(&self, account: &str, address: &str) -> Result<Option<FailureRecord>, StoreError>;
    fn put_login_failures(&self, account: &str, address: &str, record: &FailureRecord) -> Result<(), StoreError>;
    fn clear_login_failures(&self, account: &str, address: Option<&str>) -> Result<(), StoreError>;
    fn replace_mail_token(&self, token: &MailTokenRecord) -> Result<(), StoreError>;
    fn mail_token(&self, hash: &[u8]) -> Result<Option<MailTokenRecord>, StoreError>;
    fn use_mail_token(&self, hash: &[u8], at: OffsetDateTime) -> Result<bool, StoreError>;
    fn drop_mail_tokens(&self, user_id: Uuid, purpose: &str) -> Result<(), StoreError>;
    fn set_email_verified(&self, user_id: Uuid, at: OffsetDateTime) -> Result<(), StoreError>;
    fn set_email(&self, user_id: Uuid, email: &str, at: OffsetDateTime) -> Result<(), StoreError>;
    fn delete_user(&self, user_id: Uuid) -> Result<(), StoreError>;
    fn count_admins(&self) -> Result<i64, StoreError>;
    fn count_live_sessions(&self, now: OffsetDateTime) -> Result<i64, StoreError>;
    fn locked_pairs(&self, account: &str, at: OffsetDateTime) -> Result<i64, StoreError>;
    fn insert_audit_events(&self, events: &[crate::audit::AuditEvent]) -> Result<(), StoreError>;
    fn audit_page(&self, filter: &AuditFilter, limit: u32) -> Result<Vec<crate::audit::AuditEvent>, StoreError>;
    fn prune_audit(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
    fn users_page(&self, email: Option<&str>, after: Option<Uuid>, limit: u32) -> Result<Vec<UserRecord>, StoreError>;
    fn set_roles(&self, user_id: Uuid, roles: &[String], at: OffsetDateTime) -> Result<(), StoreError>;
    fn set_disabled(&self, user_id: Uuid, disabled: bool, at: OffsetDateTime) -> Result<(), StoreError>;
    fn add_revocation(&self, revocation: &Revocation, at: OffsetDateTime) -> Result<RevocationRecord, StoreError>;
    fn revoke_signing_key(&self, kid: &str, at: OffsetDateTime, expires: i64) -> Result<Option<RevocationRecord>, StoreError>;
    fn signing_keys(&self) -> Result<Vec<KeyRecord>, StoreError>;
    fn retire_signing_keys(&self, keep: &str, retire_after: OffsetDateTime) -> Result<(), StoreError>;
    fn insert_signing_key(&self, key: &KeyRecord) -> Result<(), StoreError>;
}
