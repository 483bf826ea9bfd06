//! The embedded default: one SQLite file in WAL mode, one writer connection
//! (SQLite has one writer anyway; a single connection makes every write
//! transaction wait its turn instead of failing with SQLITE_BUSY) and a pool
//! of readers.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{KeyRecord, NewRefreshToken, NewSession, Store, StoreError, UserRecord};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
}

const USER_COLUMNS: &str =
    "id, email, name, password_hash, roles, email_verified, disabled, created_at, updated_at";

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        Self::with_options(options).await
    }

    /// A private in-memory database (unit tests of the store).
    pub async fn in_memory() -> Result<Self, StoreError> {
        let name = format!(
            "file:portcullis-{}?mode=memory&cache=shared",
            Uuid::new_v4()
        );
        let options = SqliteConnectOptions::from_str(&name)?.foreign_keys(true);
        Self::with_options(options).await
    }

    async fn with_options(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { writer, readers })
    }

    pub async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}

fn user_from_row(row: &SqliteRow) -> Result<UserRecord, StoreError> {
    let roles: String = row.try_get("roles")?;
    Ok(UserRecord {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        roles: serde_json::from_str(&roles)
            .map_err(|e| StoreError::Corrupt(format!("users.roles: {e}")))?,
        email_verified: row.try_get("email_verified")?,
        disabled: row.try_get("disabled")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn key_from_row(row: &SqliteRow) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        kid: row.try_get("kid")?,
        alg: row.try_get("alg")?,
        sealed_private_key: row.try_get("sealed_private_key")?,
        created_at: row.try_get("created_at")?,
        signing_from: row.try_get("signing_from")?,
        retire_after: row.try_get("retire_after")?,
    })
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.readers).await?;
        Ok(())
    }

    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let roles =
            serde_json::to_string(&user.roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, roles, email_verified, disabled, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(user.id)
        .bind(&user.email)
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(roles)
        .bind(user.email_verified)
        .bind(user.disabled)
        .bind(user.created_at)
        .bind(user.updated_at)
        .execute(&self.writer)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict("email")
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(email)
            .fetch_optional(&self.readers)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.readers)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn set_password_hash(
        &self,
        user_id: Uuid,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?")
            .bind(hash)
            .bind(at)
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn create_session(
        &self,
        session: &NewSession,
        refresh: &NewRefreshToken,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, device_name, user_agent, ip, created_at, last_used_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(session.id)
        .bind(session.user_id)
        .bind(&session.device_name)
        .bind(&session.user_agent)
        .bind(&session.ip)
        .bind(session.created_at)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, session_id, issued_at, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&refresh.hash)
        .bind(session.id)
        .bind(refresh.issued_at)
        .bind(refresh.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn signing_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        sqlx::query(
            "SELECT kid, alg, sealed_private_key, created_at, signing_from, retire_after
             FROM signing_keys ORDER BY signing_from, created_at",
        )
        .fetch_all(&self.readers)
        .await?
        .iter()
        .map(key_from_row)
        .collect()
    }

    async fn insert_signing_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, sealed_private_key, created_at, signing_from, retire_after)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.sealed_private_key)
        .bind(key.created_at)
        .bind(key.signing_from)
        .bind(key.retire_after)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
