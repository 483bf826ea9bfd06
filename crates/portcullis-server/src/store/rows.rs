//! Row → record mapping shared by the SQLite and PostgreSQL stores: the
//! column names and decoding are the same, only the row type differs.

/// Columns of `users`, in the order every `SELECT` lists them.
pub(super) const USER_COLUMNS: &str =
    "id, email, name, password_hash, roles, email_verified, disabled, created_at, updated_at";

/// Columns of `sessions`.
pub(super) const SESSION_COLUMNS: &str =
    "id, user_id, device_name, user_agent, ip, created_at, last_used_at, expires_at, revoked_at";

/// Defines `user_from_row`, `session_from_row`, `refresh_from_row`,
/// `failure_from_row`,
/// `revocation_from_row` and `key_from_row` for one backend's row type.
macro_rules! row_mappers {
    ($row:ty) => {
        fn user_from_row(row: &$row) -> Result<UserRecord, StoreError> {
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

        fn session_from_row(row: &$row) -> Result<SessionRecord, StoreError> {
            Ok(SessionRecord {
                id: row.try_get("id")?,
                user_id: row.try_get("user_id")?,
                device_name: row.try_get("device_name")?,
                user_agent: row.try_get("user_agent")?,
                ip: row.try_get("ip")?,
                created_at: row.try_get("created_at")?,
                last_used_at: row.try_get("last_used_at")?,
                expires_at: row.try_get("expires_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        }

        fn refresh_from_row(row: &$row) -> Result<RefreshRecord, StoreError> {
            Ok(RefreshRecord {
                hash: row.try_get("hash")?,
                session_id: row.try_get("session_id")?,
                issued_at: row.try_get("issued_at")?,
                expires_at: row.try_get("expires_at")?,
                spent_at: row.try_get("spent_at")?,
                successor_hash: row.try_get("successor_hash")?,
                grace_until: row.try_get("grace_until")?,
                grace_pair: row.try_get("grace_pair")?,
            })
        }

        fn revocation_from_row(row: &$row) -> Result<RevocationRecord, StoreError> {
            let kind: String = row.try_get("kind")?;
            Ok(RevocationRecord {
                id: row.try_get("id")?,
                revocation: Revocation {
                    kind: RevocationKind::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("revocations.kind {kind:?}")))?,
                    subject: row.try_get("subject")?,
                    before: row.try_get("before")?,
                    expires: row.try_get("expires")?,
                },
            })
        }

        fn failure_from_row(row: &$row) -> Result<FailureRecord, StoreError> {
            Ok(FailureRecord {
                failures: row.try_get::<i64, _>("failures")?,
                window_start: row.try_get("window_start")?,
                locked_until: row.try_get("locked_until")?,
                last_attempt: row.try_get("last_attempt")?,
            })
        }

        fn mail_token_from_row(row: &$row) -> Result<MailTokenRecord, StoreError> {
            Ok(MailTokenRecord {
                hash: row.try_get("hash")?,
                purpose: row.try_get("purpose")?,
                user_id: row.try_get("user_id")?,
                new_email: row.try_get("new_email")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                used_at: row.try_get("used_at")?,
            })
        }

        fn key_from_row(row: &$row) -> Result<KeyRecord, StoreError> {
            Ok(KeyRecord {
                kid: row.try_get("kid")?,
                alg: row.try_get("alg")?,
                sealed_private_key: row.try_get("sealed_private_key")?,
                created_at: row.try_get("created_at")?,
                signing_from: row.try_get("signing_from")?,
                retire_after: row.try_get("retire_after")?,
            })
        }
    };
}

pub(super) use row_mappers;
