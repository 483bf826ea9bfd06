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

use super::rows::{
    REFRESH_COLUMNS, SESSION_COLUMNS, SESSION_LIFE_COLUMNS, TOKEN_HOLDER_COLUMNS, USER_COLUMNS,
    qualified, width,
};
use super::{
    AuditFilter, FailureRecord, KeyRecord, MailTokenRecord, NewRefreshToken, NewSession,
    OtherSessions, Pruned, RefreshContext, RefreshRecord, Revocation, RevocationKind,
    RevocationRecord, Rotation, SessionLife, SessionRecord, Store, StoreError, TokenHolder,
    UserRecord,
};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
}

/// How often the write-ahead log is folded back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Made on the writer's connection when it opens (temporary objects belong
/// to one connection). Each row inserted is one rotation; its trigger runs
/// the steps, each only if the one before changed a row (spend the token,
/// keep the new pair for replays in grace, insert the successor, touch the
/// session, mark the row won, store the audit event). Unqualified names:
/// SQLite forbids qualified ones in a trigger's writes, and finds the main
/// tables (the temporary one has a name of its own).
const ROTATION_TRIGGER: &str = "
    PRAGMA temp_store = MEMORY;
    CREATE TEMP TABLE pending_rotations (
        seq INTEGER NOT NULL, at, successor_hash, grace_until, grace_pair,
        spent_hash, session_id, issued_at, expires_at, audit_user_id, audit_session_id,
        won INTEGER NOT NULL DEFAULT 0);
    CREATE TEMP TRIGGER rotate AFTER INSERT ON pending_rotations BEGIN
        UPDATE refresh_tokens SET spent_at = NEW.at, successor_hash = NEW.successor_hash,
                                  grace_until = NEW.grace_until,
                                  grace_id = (SELECT coalesce(max(id), 0) + 1 FROM refresh_grace)
        WHERE hash = NEW.spent_hash AND spent_at IS NULL;
        INSERT INTO refresh_grace (id, spent_hash, pair, until)
        SELECT grace_id, hash, NEW.grace_pair, NEW.grace_until FROM refresh_tokens
        WHERE hash = NEW.spent_hash AND changes() = 1;
        INSERT INTO refresh_tokens (hash, session_id, issued_at, expires_at)
        SELECT NEW.successor_hash, NEW.session_id, NEW.issued_at, NEW.expires_at WHERE changes() = 1;
        UPDATE sessions SET last_used_at = NEW.at WHERE id = NEW.session_id AND changes() = 1;
        UPDATE pending_rotations SET won = 1 WHERE rowid = NEW.rowid AND changes() = 1;
        INSERT INTO audit_events (type, user_id, session_id, at, detail)
        SELECT 'refresh', NEW.audit_user_id, NEW.audit_session_id, NEW.at, '{}' WHERE changes() = 1;
    END";

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
    /// Live revocations after `$1` (unexpired at `$2`), at most `$3`, as
    /// one JSON array ([`super::rows::unpack_revocations`]).
    const REVOCATIONS_PACKED: &str = concat!(
        "SELECT json_group_array(json_array(id, kind, subject, before, expires) ORDER BY id) FROM (",
        super::rows::live_revocations!(),
        ")"
    );

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
        // Migrations on a connection of their own, before the writer's opens:
        // a migration that drops a column fails while a temporary trigger
        // on the same connection still names it. (Closed only once the
        // writer is open: an in-memory database ends with its last
        // connection.)
        let migrator = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&migrator).await?;
        // No ping before each acquire: the file can't hang up, and on one
        // core each ping is two thread switches to the connection's thread.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .after_connect(|connection, _| {
                Box::pin(async move {
                    sqlx::raw_sql(ROTATION_TRIGGER).execute(connection).await?;
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        migrator.close().await;
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

    /// A batch of rotations in one call to the writer's thread, answered
    /// once: the rows go into the connection's `pending_rotations`, whose
    /// trigger ([`ROTATION_TRIGGER`]) rotates each, and one row lists the
    /// winners. One INSERT is atomic, so a batch is stored whole or not at
    /// all. (Statement by statement, sqlx's worker wakes the waiting task
    /// for every statement's result: on one core, two thread switches per
    /// statement.)
    async fn rotate_batch(&self, rotations: &[Rotation]) -> Result<Vec<bool>, StoreError> {
        let mut batch = sqlx::QueryBuilder::new(
            "DELETE FROM pending_rotations;
             INSERT INTO pending_rotations (seq, at, successor_hash, grace_until, grace_pair,
                                            spent_hash, session_id, issued_at, expires_at,
                                            audit_user_id, audit_session_id) ",
        );
        batch.push_values(rotations.iter().enumerate(), |mut row, (seq, rotation)| {
            row.push(seq)
                .push_bind(rotation.at)
                .push_bind(&rotation.successor.hash)
                .push_bind(rotation.grace_until)
                .push_bind(&rotation.grace_pair)
                .push_bind(&rotation.spent)
                .push_bind(rotation.session_id)
                .push_bind(rotation.successor.issued_at)
                .push_bind(rotation.successor.expires_at)
                // As the audit trail's other events spell ids.
                .push_bind(rotation.user_id.hyphenated())
                .push_bind(rotation.session_id.hyphenated());
        });
        batch.push(";\nSELECT group_concat(seq) FROM pending_rotations WHERE won");
        let winners: Option<String> = batch.build().fetch_one(self.writer()).await?.try_get(0)?;
        let mut won = vec![false; rotations.len()];
        for seq in winners.iter().flat_map(|list| list.split(',')) {
            let seq: usize = seq
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("rotation winner {seq:?}")))?;
            if let Some(slot) = won.get_mut(seq) {
                *slot = true;
            }
        }
        Ok(won)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The one user of each test's store.
    const USER_ID: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);

    fn user(email: &str, at: OffsetDateTime) -> UserRecord {
        UserRecord {
            id: USER_ID,
            ..UserRecord::new(email.into(), "A".into(), None, vec![], at)
        }
    }

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
            user_id: USER_ID,
            successor: token(successor, at),
            grace_until: at + time::Duration::seconds(30),
            grace_pair: vec![successor; 64],
        }
    }

    /// A new session of `user` whose refresh token is `token(first)`.
    async fn session_with_token(
        store: &SqliteStore,
        user: &UserRecord,
        first: u8,
        at: OffsetDateTime,
    ) -> Uuid {
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
        session.id
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
        let user = user("a@example.com", at);
        store.create_user(&user).await.expect("user");
        let mut sessions = Vec::new();
        for first in [1u8, 2, 3] {
            sessions.push(session_with_token(&store, &user, first, at).await);
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

    /// Each answer belongs to its own rotation, past single-digit positions
    /// too, and within one batch a token spent by an earlier rotation stays
    /// spent for a later one.
    #[tokio::test]
    async fn a_batch_answers_each_rotation_in_its_place() {
        let store = SqliteStore::in_memory().await.expect("store");
        let at = OffsetDateTime::now_utc();
        let user = user("b@example.com", at);
        store.create_user(&user).await.expect("user");
        let mut batch = Vec::new();
        let mut expected = Vec::new();
        for first in 30u8..42 {
            let session = session_with_token(&store, &user, first, at).await;
            batch.push(rotation(first, first + 100, session, at));
            expected.push(true);
            if first % 5 == 0 {
                // The same token again, with another successor: too late.
                batch.push(rotation(first, first + 150, session, at));
                expected.push(false);
            }
        }
        assert_eq!(store.rotate_all(&batch).await.expect("batch"), expected);
        let audited = store
            .audit_page(
                &AuditFilter {
                    user_id: Some(USER_ID.to_string()),
                    kind: Some("refresh".into()),
                    ..AuditFilter::default()
                },
                100,
            )
            .await
            .expect("audit");
        let mut audited: Vec<_> = audited
            .iter()
            .map(|event| (event.session_id.clone(), event.at))
            .collect();
        audited.sort();
        let mut winners: Vec<_> = batch
            .iter()
            .zip(&expected)
            .filter(|(_, won)| **won)
            .map(|(rotation, _)| (Some(rotation.session_id.to_string()), at))
            .collect();
        winners.sort();
        assert_eq!(
            audited, winners,
            "one audit event a won rotation, none a lost one"
        );
        for rotation in &batch {
            let stored = store
                .refresh_token(&rotation.successor.hash)
                .await
                .expect("read");
            assert_eq!(
                stored.is_some(),
                rotation.successor.hash[0] < 150,
                "only winners leave a successor"
            );
        }
    }

    /// One row per hash asked (a hash asked twice is found twice, an
    /// unknown one not at all), each with its own session and user.
    #[tokio::test]
    async fn a_lookup_batch_finds_each_hash_it_asks_for() {
        let store = SqliteStore::in_memory().await.expect("store");
        let at = OffsetDateTime::now_utc();
        let user = UserRecord {
            roles: vec!["admin".into()],
            ..user("c@example.com", at)
        };
        store.create_user(&user).await.expect("user");
        let first = session_with_token(&store, &user, 50, at).await;
        let second = session_with_token(&store, &user, 51, at).await;
        let asked = [vec![50; 32], vec![99; 32], vec![51; 32], vec![50; 32]];
        let found = store.refresh_contexts(&asked).await.expect("lookup");
        let mut sessions: Vec<_> = found
            .iter()
            .map(|c| (c.token.hash[0], c.session.id))
            .collect();
        sessions.sort();
        let mut expected = vec![(50, first), (50, first), (51, second)];
        expected.sort();
        assert_eq!(sessions, expected);
        let context = &found[0];
        assert_eq!(context.user, user.holder());
        assert_eq!(context.session.expires_at, at + time::Duration::days(30));
        assert_eq!(context.session.last_used_at, at);
        assert_eq!(context.session.revoked_at, None);
    }
}
