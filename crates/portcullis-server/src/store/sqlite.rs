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

use super::rows::{REFRESH_COLUMNS, SESSION_COLUMNS, USER_COLUMNS, qualified, width};
use super::{
    AuditFilter, FailureRecord, KeyRecord, MailTokenRecord, NewRefreshToken, NewSession,
    OtherSessions, Pruned, RefreshContext, RefreshRecord, Revocation, RevocationKind,
    RevocationRecord, Rotation, SessionRecord, Store, StoreError, UserRecord,
};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
}

/// How often the write-ahead log is folded back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// The writer's own automatic checkpoint, in pages: only a backstop for when
/// the background checkpoints fall behind (SQLite's default is 1000).
const WRITER_CHECKPOINT_PAGES: &str = "20000";

/// Checkpoints from a connection of its own, so the writer never waits on
/// a checkpoint: with SQLite's automatic ones, every thousandth page
/// committed made that commit copy pages and wait for fsync while every
/// other write queued behind it. Stops when the store is closed.
async fn checkpoint(checkpointer: SqlitePool, writer: SqlitePool) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if writer.is_closed() {
            checkpointer.close().await;
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&checkpointer)
            .await
        {
            tracing::warn!(error = %e, "checkpointing the database failed");
        }
    }
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
        let store = Self::with_options(
            options
                .clone()
                .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES),
        )
        .await?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        tokio::spawn(checkpoint(checkpointer, store.writer.clone()));
        Ok(store)
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
        // No ping before each acquire: the file can't hang up, and on one
        // core each ping is two thread switches to the connection's thread.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { writer, readers })
    }

    pub async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }

    /// Three statements in one call (one hand-off to the connection's
    /// thread): each later one acts only if the one before changed a row.
    const ROTATE: &str = "UPDATE refresh_tokens SET spent_at = $1, successor_hash = $2, grace_until = $3, grace_pair = $4
                          WHERE hash = $5 AND spent_at IS NULL;
                          INSERT INTO refresh_tokens (hash, session_id, issued_at, expires_at)
                          SELECT $2, $6, $7, $8 WHERE changes() = 1;
                          UPDATE sessions SET last_used_at = $1 WHERE id = $6 AND changes() = 1";

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
