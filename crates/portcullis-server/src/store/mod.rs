//! Persistence behind the [`Store`] trait. One implementation per database;
//! the rest of the server sees only these records and errors.

mod sqlite;

use std::future::Future;

use time::OffsetDateTime;
use uuid::Uuid;

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
pub trait Store: Send + Sync + 'static {
    /// Whether the database answers (readiness).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Inserts a user; `Conflict` when the e-mail is taken.
    fn create_user(&self, user: &UserRecord)
    -> impl Future<Output = Result<(), StoreError>> + Send;

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

    fn signing_keys(&self) -> impl Future<Output = Result<Vec<KeyRecord>, StoreError>> + Send;

    fn insert_signing_key(
        &self,
        key: &KeyRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
