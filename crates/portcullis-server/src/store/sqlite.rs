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

use super::rows::{SESSION_COLUMNS, USER_COLUMNS};
use super::{
    AuditFilter, FailureRecord, KeyRecord, MailTokenRecord, NewRefreshToken, NewSession, Pruned,
    RefreshRecord, Revocation, RevocationKind, RevocationRecord, Rotation, SessionRecord, Store,
    StoreError, UserRecord,
};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
}

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

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        &self.readers
    }

    /// Ready means able to serve logins, which write: a reader answers, and
    /// the writer can take SQLite's write lock (released at once).
    async fn ping_backend(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.readers).await?;
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await?
            .rollback()
            .await?;
        Ok(())
    }

    /// SQLite has one writer: ids already commit in order.
    async fn serialize_revocations(_: &mut sqlx::SqliteConnection) -> Result<(), StoreError> {
        Ok(())
    }
}

super::sql::sql_store!(SqliteStore, SqliteRow, sqlx::SqliteConnection);
