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

#[cfg(test)]
mod tests {
    use super::*;

    fn token(byte: u8, at: OffsetDateTime) -> NewRefreshToken {
        NewRefreshToken {
            hash: vec![byte; 32],
            issued_at: at,
            expires_at: at + time::Duration::days(1),
        }
    }

    fn rotation(spent: u8, successor: u8, session_id: Uuid, at: OffsetDateTime) -> Rotation {
        Rotation {
            spent: vec![spent; 32],
            at,
            session_id,
            successor: token(successor, at),
            grace_until: at + time::Duration::seconds(30),
            grace_pair: vec![successor; 64],
        }
    }

    /// One failing rotation fails its batch (`Rotations` then retries each
    /// alone): nothing of the batch may stay, and the writer must not be
    /// left inside its transaction.
    #[tokio::test]
    async fn a_failed_rotation_batch_leaves_nothing_and_the_writer_usable() {
        // A transaction left open would block the readers' next read.
        tokio::time::timeout(Duration::from_secs(10), rotate_around_a_failed_batch())
            .await
            .expect("the store answered in time");
    }

    async fn rotate_around_a_failed_batch() {
        let store = SqliteStore::in_memory().await.expect("store");
        let at = OffsetDateTime::now_utc();
        let user = UserRecord::new("a@example.com".into(), "A".into(), None, vec![], at);
        store.create_user(&user).await.expect("user");
        let mut sessions = Vec::new();
        for first in [1u8, 2, 3] {
            let session = NewSession {
                id: Uuid::new_v4(),
                user_id: user.id,
                device_name: None,
                user_agent: None,
                ip: None,
                created_at: at,
                expires_at: at + time::Duration::days(30),
            };
            store
                .create_session(&session, &token(first, at))
                .await
                .expect("session");
            sessions.push(session.id);
        }
        // Token 2's successor would take token 3's hash: a unique violation.
        let good = rotation(1, 11, sessions[0], at);
        let clash = rotation(2, 3, sessions[1], at);
        assert!(store.rotate_all(&[good.clone(), clash]).await.is_err());
        let untouched = store.refresh_token(&[1; 32]).await.expect("read");
        assert!(
            untouched.is_some_and(|t| t.spent_at.is_none()),
            "rolled back"
        );

        assert_eq!(
            store
                .rotate_all(std::slice::from_ref(&good))
                .await
                .expect("alone"),
            [true]
        );
        let twice = rotation(1, 12, sessions[0], at);
        assert_eq!(
            store
                .rotate_all(&[rotation(3, 13, sessions[2], at), twice])
                .await
                .expect("batch"),
            [true, false],
            "a spent token does not rotate again"
        );
        for (hash, successor) in [(1u8, 11u8), (3, 13)] {
            let spent = store.refresh_token(&[hash; 32]).await.expect("read");
            assert_eq!(
                spent.and_then(|t| t.successor_hash),
                Some(vec![successor; 32])
            );
            assert!(
                store
                    .refresh_token(&[successor; 32])
                    .await
                    .expect("read")
                    .is_some()
            );
        }
        assert!(
            store
                .refresh_token(&[12; 32])
                .await
                .expect("read")
                .is_none()
        );
    }
}
