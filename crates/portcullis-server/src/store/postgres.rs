//! PostgreSQL, for several stateless instances sharing one database.
//!
//! Concurrency rests on two things: a refresh spends its token with a
//! conditional `UPDATE … WHERE spent_at IS NULL` (a concurrent one waits for
//! the row lock, then matches nothing), and every transaction that inserts
//! revocations first takes one advisory lock, so feed ids commit in order.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Row};
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

/// Serialises revocation inserts (the feed-cursor trap of DESIGN.md).
const REVOCATION_LOCK: i64 = 0x706f_7274_6375_6c6c;

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects, and runs the migrations (under PostgreSQL's own migration
    /// lock, so instances starting together migrate once).
    pub async fn connect(
        url: &str,
        max_connections: u32,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let options: PgConnectOptions =
            url.parse::<PgConnectOptions>()?.disable_statement_logging();
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(timeout)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Live revocations after `$1` (unexpired at `$2`), at most `$3`, as
    /// one JSON array ([`super::rows::unpack_revocations`]).
    const REVOCATIONS_PACKED: &str = concat!(
        "SELECT coalesce(json_agg(json_build_array(id, kind, subject, before, expires) ORDER BY id),
                         '[]'::json)::text FROM (",
        super::rows::live_revocations!(),
        ") AS live"
    );

    /// One statement: the later steps see the spent row through `spent`.
    const ROTATE: &str = "WITH spent AS (
                              UPDATE refresh_tokens SET spent_at = $1, successor_hash = $2, grace_until = $3,
                                                        grace_id = nextval('refresh_grace_id_seq')
                              WHERE hash = $5 AND spent_at IS NULL RETURNING hash, grace_id),
                          grace AS (
                              INSERT INTO refresh_grace (id, spent_hash, pair, until)
                              SELECT grace_id, hash, $4, $3 FROM spent),
                          successor AS (
                              INSERT INTO refresh_tokens (hash, session_id, issued_at, expires_at)
                              SELECT $2, $6, $7, $8 FROM spent),
                          touched AS (
                              UPDATE sessions SET last_used_at = $1 WHERE id = $6 AND EXISTS (SELECT 1 FROM spent)),
                          audited AS (
                              INSERT INTO audit_events (type, user_id, session_id, at, detail)
                              SELECT 'refresh', $9::text, $6::text, $1, '{}' FROM spent)
                          SELECT 1 FROM spent";

    /// One transaction a batch, one round trip a rotation.
    async fn rotate_batch(&self, rotations: &[Rotation]) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut won = Vec::with_capacity(rotations.len());
        for rotation in rotations {
            let spent = sqlx::query(Self::ROTATE)
                .bind(rotation.at)
                .bind(&rotation.successor.hash)
                .bind(rotation.grace_until)
                .bind(&rotation.grace_pair)
                .bind(&rotation.spent)
                .bind(rotation.session_id)
                .bind(rotation.successor.issued_at)
                .bind(rotation.successor.expires_at)
                .bind(rotation.user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            won.push(spent > 0);
        }
        tx.commit().await?;
        Ok(won)
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    async fn ping_backend(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Sequence values become visible at commit, not at insert: one
    /// advisory lock per revoking transaction makes ids commit in order, so
    /// a feed reader of `id > cursor` never skips an entry committed late.
    async fn serialize_revocations(tx: &mut sqlx::PgConnection) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(REVOCATION_LOCK)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

super::sql::sql_store!(PgStore, PgRow, sqlx::PgConnection);
