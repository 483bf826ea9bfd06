//! The storage operations, written once for both databases. The SQL is
//! portable (`$N` parameters, which sqlx binds by number on SQLite too); each
//! backend supplies only its pools, its readiness probe and how it
//! serialises revocation inserts (see `sql_store!`).

/// Implements [`super::Store`] for a backend type that has
/// `writer()`/`reader()` pools, `ping_backend()`,
/// `serialize_revocations(&mut Connection)` and `rotate_batch(&[Rotation])`,
/// which stores a batch of rotations atomically (each spends a refresh
/// token, inserts its successor and touches the session; one whose token
/// was already spent changes nothing and answers `false`).
macro_rules! sql_store {
    ($store:ty, $row:ty, $conn:ty) => {
        super::rows::row_mappers!($row);

        fn is_unique_violation(error: &sqlx::Error) -> bool {
            matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
        }

        enum InsertUserError {
            Sql(sqlx::Error),
            Store(StoreError),
        }

        /// Inserts `user`; with `skip_taken` a taken e-mail is left alone
        /// (0 rows) instead of failing. The SQL error is kept whole so the
        /// caller can tell a unique violation.
        async fn insert_user(
            conn: &mut $conn,
            user: &UserRecord,
            skip_taken: bool,
        ) -> Result<u64, InsertUserError> {
            let roles = serde_json::to_string(&user.roles)
                .map_err(|e| InsertUserError::Store(StoreError::Corrupt(e.to_string())))?;
            let sql = if skip_taken {
                "INSERT INTO users (id, email, name, password_hash, roles, email_verified, disabled, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (email) DO NOTHING"
            } else {
                "INSERT INTO users (id, email, name, password_hash, roles, email_verified, disabled, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            };
            let done = sqlx::query(sql)
                .bind(user.id)
                .bind(&user.email)
                .bind(&user.name)
                .bind(&user.password_hash)
                .bind(roles)
                .bind(user.email_verified)
                .bind(user.disabled)
                .bind(user.created_at)
                .bind(user.updated_at)
                .execute(conn)
                .await
                .map_err(InsertUserError::Sql)?;
            Ok(done.rows_affected())
        }

        async fn insert_revocation(
            tx: &mut $conn,
            revocation: &Revocation,
            at: OffsetDateTime,
        ) -> Result<RevocationRecord, StoreError> {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO revocations (kind, subject, before, expires, created_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(revocation.kind.as_str())
            .bind(&revocation.subject)
            .bind(revocation.before)
            .bind(revocation.expires)
            .bind(at)
            .fetch_one(&mut *tx)
            .await?;
            Ok(RevocationRecord {
                id,
                revocation: revocation.clone(),
            })
        }

        /// Ends a revoking transaction: when the update changed nothing it
        /// is rolled back (`None`); otherwise the entry is recorded with it.
        async fn commit_revocation(
            mut tx: sqlx::Transaction<'_, <$conn as sqlx::Connection>::Database>,
            changed: u64,
            entry: &Revocation,
            at: OffsetDateTime,
        ) -> Result<Option<RevocationRecord>, StoreError> {
            if changed == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
            let record = insert_revocation(&mut tx, entry, at).await?;
            tx.commit().await?;
            Ok(Some(record))
        }

        impl Store for $store {
            async fn ping(&self) -> Result<(), StoreError> {
                self.ping_backend().await
            }

            async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
                let mut conn = self.writer().acquire().await?;
                insert_user(&mut conn, user, false).await.map_err(|e| match e {
                    InsertUserError::Sql(e) if is_unique_violation(&e) => StoreError::Conflict("email"),
                    InsertUserError::Sql(e) => e.into(),
                    InsertUserError::Store(e) => e,
                })?;
                Ok(())
            }

            async fn import_users(&self, users: &[UserRecord]) -> Result<Vec<bool>, StoreError> {
                let mut tx = self.writer().begin().await?;
                let mut inserted = Vec::with_capacity(users.len());
                for user in users {
                    let rows = insert_user(&mut tx, user, true).await.map_err(|e| match e {
                        InsertUserError::Sql(e) => StoreError::from(e),
                        InsertUserError::Store(e) => e,
                    })?;
                    inserted.push(rows == 1);
                }
                tx.commit().await?;
                Ok(inserted)
            }

            async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(email)
                    .fetch_optional(self.reader())
                    .await?
                    .as_ref()
                    .map(user_from_row)
                    .transpose()
            }

            async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(self.reader())
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
                sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                    .bind(hash)
                    .bind(at)
                    .bind(user_id)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn create_session(
                &self,
                session: &NewSession,
                refresh: &NewRefreshToken,
            ) -> Result<(), StoreError> {
                let mut tx = self.writer().begin().await?;
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, device_name, user_agent, ip, created_at, last_used_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
                )
                .bind(session.id)
                .bind(session.user_id)
                .bind(&session.device_name)
                .bind(&session.user_agent)
                .bind(&session.ip)
                .bind(session.created_at)
                .bind(session.expires_at)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO refresh_tokens (hash, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
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

            async fn session(&self, id: Uuid) -> Result<Option<SessionRecord>, StoreError> {
                let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await?
                    .as_ref()
                    .map(session_from_row)
                    .transpose()
            }

            async fn other_sessions(
                &self,
                user_id: Uuid,
                except: Uuid,
                user_agent: Option<&str>,
                now: OffsetDateTime,
            ) -> Result<OtherSessions, StoreError> {
                let (any, same_user_agent): (bool, bool) = sqlx::query_as(
                    "SELECT
                       EXISTS (SELECT 1 FROM sessions WHERE user_id = $1 AND id <> $2
                               AND revoked_at IS NULL AND expires_at > $3),
                       EXISTS (SELECT 1 FROM sessions WHERE user_id = $1 AND id <> $2
                               AND revoked_at IS NULL AND expires_at > $3
                               AND user_agent IS NOT DISTINCT FROM $4)",
                )
                .bind(user_id)
                .bind(except)
                .bind(now)
                .bind(user_agent)
                .fetch_one(self.reader())
                .await?;
                Ok(OtherSessions { any, same_user_agent })
            }

            async fn live_sessions(
                &self,
                user_id: Uuid,
                now: OffsetDateTime,
            ) -> Result<Vec<SessionRecord>, StoreError> {
                let sql = format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions
                     WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
                     ORDER BY created_at"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(user_id)
                    .bind(now)
                    .fetch_all(self.reader())
                    .await?
                    .iter()
                    .map(session_from_row)
                    .collect()
            }

            async fn refresh_token(&self, hash: &[u8]) -> Result<Option<RefreshRecord>, StoreError> {
                let sql = format!("SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE hash = $1");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(hash)
                    .fetch_optional(self.reader())
                    .await?
                    .as_ref()
                    .map(refresh_from_row)
                    .transpose()
            }

            async fn grace_pair(&self, id: i64, spent: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
                // The hash too: ids of pruned rows may be handed out again.
                Ok(sqlx::query_scalar("SELECT pair FROM refresh_grace WHERE id = $1 AND spent_hash = $2")
                    .bind(id)
                    .bind(spent)
                    .fetch_optional(self.reader())
                    .await?)
            }

            async fn refresh_contexts(&self, hashes: &[Vec<u8>]) -> Result<Vec<RefreshContext>, StoreError> {
                if hashes.is_empty() {
                    return Ok(Vec::new());
                }
                // Built once: every lookup batch ends with it. The hashes
                // come as a VALUES list scanned first (CROSS JOIN fixes the
                // order in SQLite, where it is also run as a co-routine): an
                // `IN (…)` list made SQLite build and drop a temporary
                // b-tree for every batch.
                static SELECT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                    format!(
                        ") SELECT {}, {}, {} FROM wanted
                         CROSS JOIN refresh_tokens r
                         JOIN sessions s ON s.id = r.session_id
                         JOIN users u ON u.id = s.user_id
                         WHERE r.hash = wanted.hash",
                        qualified("r", REFRESH_COLUMNS),
                        qualified("s", SESSION_LIFE_COLUMNS),
                        qualified("u", TOKEN_HOLDER_COLUMNS),
                    )
                });
                let mut select = sqlx::QueryBuilder::new("WITH wanted(hash) AS (VALUES ");
                let mut list = select.separated(", ");
                for hash in hashes {
                    list.push("(");
                    list.push_bind_unseparated(hash);
                    list.push_unseparated(")");
                }
                select.push(SELECT.as_str());
                // On the writer: SQLite drops a connection's page cache
                // whenever another connection commits, and rotations commit
                // all the time, so a reader would fetch every page again.
                let session_at_column = width(REFRESH_COLUMNS);
                let user_at_column = session_at_column + width(SESSION_LIFE_COLUMNS);
                select
                    .build()
                    .fetch_all(self.writer())
                    .await?
                    .iter()
                    .map(|row| {
                        Ok(RefreshContext {
                            token: refresh_from_row(row)?,
                            session: session_life_at(row, session_at_column)?,
                            user: token_holder_at(row, user_at_column)?,
                        })
                    })
                    .collect()
            }

            async fn rotate_all(&self, rotations: &[Rotation]) -> Result<Vec<bool>, StoreError> {
                self.rotate_batch(rotations).await
            }

            async fn revoke_session(
                &self,
                id: Uuid,
                user_id: Option<Uuid>,
                at: OffsetDateTime,
                expires: i64,
            ) -> Result<Option<RevocationRecord>, StoreError> {
                let mut tx = self.writer().begin().await?;
                Self::serialize_revocations(&mut tx).await?;
                let revoked = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1
                     WHERE id = $2 AND ($3 OR user_id = $4) AND revoked_at IS NULL",
                )
                .bind(at)
                .bind(id)
                .bind(user_id.is_none())
                .bind(user_id.unwrap_or_default())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let entry = Revocation {
                    kind: RevocationKind::Session,
                    subject: id.to_string(),
                    before: None,
                    expires: Some(expires),
                };
                commit_revocation(tx, revoked, &entry, at).await
            }

            async fn revoke_user_sessions(
                &self,
                user_id: Uuid,
                except: Option<Uuid>,
                at: OffsetDateTime,
                expires: i64,
                user_entry: Option<Revocation>,
            ) -> Result<Vec<RevocationRecord>, StoreError> {
                let mut tx = self.writer().begin().await?;
                Self::serialize_revocations(&mut tx).await?;
                let revoked: Vec<Uuid> = sqlx::query_scalar(
                    "UPDATE sessions SET revoked_at = $1
                     WHERE user_id = $2 AND revoked_at IS NULL AND ($3 OR id <> $4)
                     RETURNING id",
                )
                .bind(at)
                .bind(user_id)
                .bind(except.is_none())
                .bind(except.unwrap_or_default())
                .fetch_all(&mut *tx)
                .await?;
                let mut records = Vec::new();
                match &user_entry {
                    Some(entry) => records.push(insert_revocation(&mut tx, entry, at).await?),
                    None => {
                        for sid in revoked {
                            let entry = Revocation {
                                kind: RevocationKind::Session,
                                subject: sid.to_string(),
                                before: None,
                                expires: Some(expires),
                            };
                            records.push(insert_revocation(&mut tx, &entry, at).await?);
                        }
                    }
                }
                tx.commit().await?;
                Ok(records)
            }

            async fn revocations_since(
                &self,
                after: i64,
                now: i64,
                limit: u32,
            ) -> Result<Vec<RevocationRecord>, StoreError> {
                let packed: String = sqlx::query_scalar(<$store>::REVOCATIONS_PACKED)
                    .bind(after)
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_one(self.reader())
                    .await?;
                super::rows::unpack_revocations(&packed)
            }

            async fn feed_epoch(&self) -> Result<String, StoreError> {
                Ok(
                    sqlx::query_scalar("SELECT value FROM meta WHERE name = 'feed_epoch'")
                        .fetch_one(self.reader())
                        .await?,
                )
            }

            async fn prune(
                &self,
                now: OffsetDateTime,
                idle_timeout: Duration,
            ) -> Result<Pruned, StoreError> {
                let idle_cutoff = now - idle_timeout;
                let mut tx = self.writer().begin().await?;
                let refresh_tokens = sqlx::query(
                    "DELETE FROM refresh_tokens WHERE session_id IN (
                        SELECT id FROM sessions
                        WHERE revoked_at IS NOT NULL OR expires_at <= $1 OR last_used_at <= $2)",
                )
                .bind(now)
                .bind(idle_cutoff)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let sessions = sqlx::query(
                    "DELETE FROM sessions WHERE revoked_at IS NOT NULL OR expires_at <= $1 OR last_used_at <= $2",
                )
                .bind(now)
                .bind(idle_cutoff)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                sqlx::query("DELETE FROM refresh_grace WHERE until <= $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM mail_tokens WHERE used_at IS NOT NULL OR expires_at <= $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let revocations =
                    sqlx::query("DELETE FROM revocations WHERE expires IS NOT NULL AND expires <= $1")
                        .bind(now.unix_timestamp())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                tx.commit().await?;
                Ok(Pruned {
                    sessions,
                    refresh_tokens,
                    revocations,
                })
            }

            async fn login_failures(
                &self,
                account: &str,
                address: &str,
            ) -> Result<Option<FailureRecord>, StoreError> {
                sqlx::query(
                    "SELECT failures, window_start, locked_until, last_attempt FROM login_failures WHERE account = $1 AND address = $2",
                )
                .bind(account)
                .bind(address)
                .fetch_optional(self.reader())
                .await?
                .as_ref()
                .map(failure_from_row)
                .transpose()
            }

            async fn put_login_failures(
                &self,
                account: &str,
                address: &str,
                record: &FailureRecord,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO login_failures (account, address, failures, window_start, locked_until, last_attempt) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account, address) DO UPDATE SET failures = excluded.failures, window_start = excluded.window_start, locked_until = excluded.locked_until, last_attempt = excluded.last_attempt",
                )
                .bind(account)
                .bind(address)
                .bind(record.failures)
                .bind(record.window_start)
                .bind(record.locked_until)
                .bind(record.last_attempt)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn clear_login_failures(
                &self,
                account: &str,
                address: Option<&str>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "DELETE FROM login_failures WHERE account = $1 AND ($2 OR address = $3)",
                )
                .bind(account)
                .bind(address.is_none())
                .bind(address.unwrap_or_default())
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn replace_mail_token(&self, token: &MailTokenRecord) -> Result<(), StoreError> {
                let mut tx = self.writer().begin().await?;
                sqlx::query("DELETE FROM mail_tokens WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL")
                    .bind(token.user_id)
                    .bind(&token.purpose)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO mail_tokens (hash, purpose, user_id, new_email, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&token.hash)
                .bind(&token.purpose)
                .bind(token.user_id)
                .bind(&token.new_email)
                .bind(token.created_at)
                .bind(token.expires_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn mail_token(&self, hash: &[u8]) -> Result<Option<MailTokenRecord>, StoreError> {
                sqlx::query(
                    "SELECT hash, purpose, user_id, new_email, created_at, expires_at, used_at
                     FROM mail_tokens WHERE hash = $1",
                )
                .bind(hash)
                .fetch_optional(self.writer())
                .await?
                .as_ref()
                .map(mail_token_from_row)
                .transpose()
            }

            async fn use_mail_token(&self, hash: &[u8], at: OffsetDateTime) -> Result<bool, StoreError> {
                let used = sqlx::query(
                    "UPDATE mail_tokens SET used_at = $1 WHERE hash = $2 AND used_at IS NULL AND expires_at > $1",
                )
                .bind(at)
                .bind(hash)
                .execute(self.writer())
                .await?
                .rows_affected();
                Ok(used == 1)
            }

            async fn drop_mail_tokens(&self, user_id: Uuid, purpose: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM mail_tokens WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL")
                    .bind(user_id)
                    .bind(purpose)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn set_email_verified(&self, user_id: Uuid, at: OffsetDateTime) -> Result<(), StoreError> {
                sqlx::query("UPDATE users SET email_verified = $1, updated_at = $2 WHERE id = $3")
                    .bind(true)
                    .bind(at)
                    .bind(user_id)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn set_email(&self, user_id: Uuid, email: &str, at: OffsetDateTime) -> Result<(), StoreError> {
                sqlx::query("UPDATE users SET email = $1, email_verified = $2, updated_at = $3 WHERE id = $4")
                    .bind(email)
                    .bind(true)
                    .bind(at)
                    .bind(user_id)
                    .execute(self.writer())
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

            async fn users_page(
                &self,
                email: Option<&str>,
                after: Option<Uuid>,
                limit: u32,
            ) -> Result<Vec<UserRecord>, StoreError> {
                // A substring of the address; LIKE's wildcards in it are
                // matched literally.
                let pattern = email.map(|e| {
                    let escaped = e.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                    format!("%{escaped}%")
                });
                let sql = format!(
                    "SELECT {USER_COLUMNS} FROM users
                     WHERE ($1 OR email LIKE $2 ESCAPE '\\') AND ($3 OR id > $4)
                     ORDER BY id LIMIT $5"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(pattern.is_none())
                    .bind(pattern.unwrap_or_default())
                    .bind(after.is_none())
                    .bind(after.unwrap_or_default())
                    .bind(i64::from(limit))
                    .fetch_all(self.reader())
                    .await?
                    .iter()
                    .map(user_from_row)
                    .collect()
            }

            async fn set_roles(&self, user_id: Uuid, roles: &[String], at: OffsetDateTime) -> Result<(), StoreError> {
                let roles = serde_json::to_string(roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                sqlx::query("UPDATE users SET roles = $1, updated_at = $2 WHERE id = $3")
                    .bind(roles)
                    .bind(at)
                    .bind(user_id)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn set_disabled(&self, user_id: Uuid, disabled: bool, at: OffsetDateTime) -> Result<(), StoreError> {
                sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3")
                    .bind(disabled)
                    .bind(at)
                    .bind(user_id)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn add_revocation(&self, revocation: &Revocation, at: OffsetDateTime) -> Result<RevocationRecord, StoreError> {
                let mut tx = self.writer().begin().await?;
                Self::serialize_revocations(&mut tx).await?;
                let record = insert_revocation(&mut tx, revocation, at).await?;
                tx.commit().await?;
                Ok(record)
            }

            async fn revoke_signing_key(
                &self,
                kid: &str,
                at: OffsetDateTime,
                expires: i64,
            ) -> Result<Option<RevocationRecord>, StoreError> {
                let mut tx = self.writer().begin().await?;
                Self::serialize_revocations(&mut tx).await?;
                let retired = sqlx::query("UPDATE signing_keys SET retire_after = $1 WHERE kid = $2")
                    .bind(at)
                    .bind(kid)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let entry = Revocation {
                    kind: RevocationKind::Key,
                    subject: kid.to_owned(),
                    before: None,
                    expires: Some(expires),
                };
                commit_revocation(tx, retired, &entry, at).await
            }

            async fn insert_audit_events(
                &self,
                events: &[crate::audit::AuditEvent],
            ) -> Result<(), StoreError> {
                if events.is_empty() {
                    return Ok(());
                }
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO audit_events (type, user_id, session_id, ip, user_agent, at, detail) ",
                );
                insert.push_values(events, |mut row, event| {
                    row.push_bind(&event.kind)
                        .push_bind(&event.user_id)
                        .push_bind(&event.session_id)
                        .push_bind(&event.ip)
                        .push_bind(&event.user_agent)
                        .push_bind(event.at)
                        .push_bind(event.detail.to_string());
                });
                insert.build().execute(self.writer()).await?;
                Ok(())
            }

            async fn audit_page(
                &self,
                filter: &AuditFilter,
                limit: u32,
            ) -> Result<Vec<crate::audit::AuditEvent>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, type, user_id, session_id, ip, user_agent, at, detail FROM audit_events
                     WHERE ($1 OR user_id = $2) AND ($3 OR type = $4) AND ($5 OR at >= $6) AND ($7 OR id < $8)
                     ORDER BY id DESC LIMIT $9",
                )
                .bind(filter.user_id.is_none())
                .bind(filter.user_id.clone().unwrap_or_default())
                .bind(filter.kind.is_none())
                .bind(filter.kind.clone().unwrap_or_default())
                .bind(filter.since.is_none())
                .bind(filter.since.unwrap_or(OffsetDateTime::UNIX_EPOCH))
                .bind(filter.before_id.is_none())
                .bind(filter.before_id.unwrap_or_default())
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await?;
                rows.iter()
                    .map(|row| {
                        let detail: String = row.try_get("detail")?;
                        Ok(crate::audit::AuditEvent {
                            id: row.try_get("id")?,
                            kind: row.try_get("type")?,
                            user_id: row.try_get("user_id")?,
                            session_id: row.try_get("session_id")?,
                            ip: row.try_get("ip")?,
                            user_agent: row.try_get("user_agent")?,
                            at: row.try_get("at")?,
                            detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                        })
                    })
                    .collect()
            }

            async fn prune_audit(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
                Ok(sqlx::query("DELETE FROM audit_events WHERE at < $1")
                    .bind(before)
                    .execute(self.writer())
                    .await?
                    .rows_affected())
            }

            async fn locked_pairs(&self, account: &str, at: OffsetDateTime) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM login_failures WHERE account = $1 AND locked_until > $2",
                )
                .bind(account)
                .bind(at)
                .fetch_one(self.reader())
                .await?)
            }

            async fn count_admins(&self) -> Result<i64, StoreError> {
                // Role names match [a-z][a-z0-9_-]*, so the quoted name
                // cannot be part of another role's name.
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM users WHERE roles LIKE '%\"admin\"%' AND disabled = $1",
                )
                .bind(false)
                .fetch_one(self.writer())
                .await?)
            }

            async fn count_live_sessions(&self, now: OffsetDateTime) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > $1",
                )
                .bind(now)
                .fetch_one(self.reader())
                .await?)
            }

            async fn delete_user(&self, user_id: Uuid) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(user_id)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn signing_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
                sqlx::query(
                    "SELECT kid, alg, sealed_private_key, created_at, signing_from, retire_after
                     FROM signing_keys ORDER BY signing_from, created_at",
                )
                .fetch_all(self.reader())
                .await?
                .iter()
                .map(key_from_row)
                .collect()
            }

            async fn retire_signing_keys(
                &self,
                keep: &str,
                retire_after: OffsetDateTime,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE signing_keys SET retire_after = $1 WHERE kid <> $2 AND retire_after IS NULL",
                )
                .bind(retire_after)
                .bind(keep)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn insert_signing_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
                // Instances starting together on an empty database may both generate
                // a first key; both are kept and both verify.
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, sealed_private_key, created_at, signing_from, retire_after)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kid) DO NOTHING",
                )
                .bind(&key.kid)
                .bind(&key.alg)
                .bind(&key.sealed_private_key)
                .bind(key.created_at)
                .bind(key.signing_from)
                .bind(key.retire_after)
                .execute(self.writer())
                .await?;
                Ok(())
            }
        }
    };
}

pub(super) use sql_store;
