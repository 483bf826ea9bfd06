//! Row → record mapping shared by the SQLite and PostgreSQL stores: the
//! column names and decoding are the same, only the row type differs.

use super::{Revocation, RevocationKind, RevocationRecord, StoreError};

/// Columns of `users`, in the order every `SELECT` lists them: the mappers
/// below read by position, so that one joined row (the refresh lookup's)
/// can hold a refresh token, its session's life and its user.
pub(super) const USER_COLUMNS: &str =
    "id, email, name, password_hash, roles, email_verified, disabled, created_at, updated_at";

/// Columns of `sessions`, in mapping order.
pub(super) const SESSION_COLUMNS: &str =
    "id, user_id, device_name, user_agent, ip, created_at, last_used_at, expires_at, revoked_at";

/// Columns of `refresh_tokens`, in mapping order.
pub(super) const REFRESH_COLUMNS: &str =
    "hash, session_id, issued_at, expires_at, spent_at, successor_hash, grace_until, grace_id";

/// The columns of `sessions` a [`super::SessionLife`] holds, in mapping order.
pub(super) const SESSION_LIFE_COLUMNS: &str = "id, last_used_at, expires_at, revoked_at";

/// The columns of `users` a [`super::TokenHolder`] holds, in mapping order.
pub(super) const TOKEN_HOLDER_COLUMNS: &str = "id, email, name, roles, disabled";

/// `columns` with each name qualified by `table.`, for joins.
pub(super) fn qualified(table: &str, columns: &str) -> String {
    columns
        .split(", ")
        .map(|column| format!("{table}.{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many columns a list names.
pub(super) fn width(columns: &str) -> usize {
    columns.split(", ").count()
}

/// Defines `user_from_row`, `session_from_row`, `refresh_from_row`,
/// `token_holder_at` and `session_life_at` (these two read from a column
/// offset, for the refresh lookup's joined row), `failure_from_row`,
/// `mail_token_from_row` and `key_from_row` for one backend's row type.
macro_rules! row_mappers {
    ($row:ty) => {
        fn user_from_row(row: &$row) -> Result<UserRecord, StoreError> {
            Ok(UserRecord {
                id: row.try_get(0)?,
                email: row.try_get(1)?,
                name: row.try_get(2)?,
                password_hash: row.try_get(3)?,
                roles: super::rows::roles(row.try_get(4)?)?,
                email_verified: row.try_get(5)?,
                disabled: row.try_get(6)?,
                created_at: row.try_get(7)?,
                updated_at: row.try_get(8)?,
            })
        }

        fn session_from_row(row: &$row) -> Result<SessionRecord, StoreError> {
            Ok(SessionRecord {
                id: row.try_get(0)?,
                user_id: row.try_get(1)?,
                device_name: row.try_get(2)?,
                user_agent: row.try_get(3)?,
                ip: row.try_get(4)?,
                created_at: row.try_get(5)?,
                last_used_at: row.try_get(6)?,
                expires_at: row.try_get(7)?,
                revoked_at: row.try_get(8)?,
            })
        }

        fn token_holder_at(row: &$row, at: usize) -> Result<TokenHolder, StoreError> {
            Ok(TokenHolder {
                id: row.try_get(at)?,
                email: row.try_get(at + 1)?,
                name: row.try_get(at + 2)?,
                roles: super::rows::roles(row.try_get(at + 3)?)?,
                disabled: row.try_get(at + 4)?,
            })
        }

        fn session_life_at(row: &$row, at: usize) -> Result<SessionLife, StoreError> {
            Ok(SessionLife {
                id: row.try_get(at)?,
                last_used_at: row.try_get(at + 1)?,
                expires_at: row.try_get(at + 2)?,
                revoked_at: row.try_get(at + 3)?,
            })
        }

        fn refresh_from_row(row: &$row) -> Result<RefreshRecord, StoreError> {
            Ok(RefreshRecord {
                hash: row.try_get(0)?,
                session_id: row.try_get(1)?,
                issued_at: row.try_get(2)?,
                expires_at: row.try_get(3)?,
                spent_at: row.try_get(4)?,
                successor_hash: row.try_get(5)?,
                grace_until: row.try_get(6)?,
                grace_id: row.try_get(7)?,
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

/// `users.roles`, stored as a JSON array of strings.
pub(super) fn roles(stored: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(stored).map_err(|e| StoreError::Corrupt(format!("users.roles: {e}")))
}

/// The live revocations after `$1` (unexpired at `$2`), at most `$3`, in
/// id order: the one filter each backend's `REVOCATIONS_PACKED` packs.
macro_rules! live_revocations {
    () => {
        "SELECT id, kind, subject, before, expires FROM revocations
         WHERE id > $1 AND (expires IS NULL OR expires > $2)
         ORDER BY id LIMIT $3"
    };
}

pub(super) use live_revocations;

/// Revocations as both backends pack a batch of them into one row
/// (`REVOCATIONS_PACKED`): a JSON array of `[id, kind, subject, before,
/// expires]`, in id order. Start-up loads every live revocation, and row by
/// row sqlx copied each value and handed each row to the waiting task
/// across threads: most of the load's time (BENCHMARKS.md).
pub(super) fn unpack_revocations(packed: &str) -> Result<Vec<RevocationRecord>, StoreError> {
    type Entry = (i64, String, String, Option<i64>, Option<i64>);
    let entries: Vec<Entry> = serde_json::from_str(packed)
        .map_err(|e| StoreError::Corrupt(format!("packed revocations: {e}")))?;
    entries
        .into_iter()
        .map(|(id, kind, subject, before, expires)| {
            Ok(RevocationRecord {
                id,
                revocation: Revocation {
                    kind: RevocationKind::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("revocations.kind {kind:?}")))?,
                    subject,
                    before,
                    expires,
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_revocations_unpack_in_order() {
        let packed = r#"[[7,"sid","a-session",null,1800000000],[9,"sub","a-user",1700000000,1800000000],[12,"kid","a-key",null,null]]"#;
        let unpacked = unpack_revocations(packed).expect("unpacked");
        let ids: Vec<i64> = unpacked.iter().map(|r| r.id).collect();
        assert_eq!(ids, [7, 9, 12]);
        assert_eq!(
            unpacked[1].revocation,
            Revocation {
                kind: RevocationKind::User,
                subject: "a-user".into(),
                before: Some(1_700_000_000),
                expires: Some(1_800_000_000),
            }
        );
        assert_eq!(unpacked[2].revocation.expires, None);
        assert!(unpack_revocations("[]").expect("empty").is_empty());
        assert!(matches!(
            unpack_revocations(r#"[[1,"nope","x",null,null]]"#),
            Err(StoreError::Corrupt(_))
        ));
    }

    /// The positional mappers read exactly these many columns.
    #[test]
    fn column_lists_match_the_mappers() {
        assert_eq!(width(USER_COLUMNS), 9);
        assert_eq!(width(SESSION_COLUMNS), 9);
        assert_eq!(width(REFRESH_COLUMNS), 8);
        assert_eq!(width(SESSION_LIFE_COLUMNS), 4);
        assert_eq!(width(TOKEN_HOLDER_COLUMNS), 5);
        assert_eq!(
            qualified("s", "id, user_id"),
            "s.id, s.user_id",
            "qualified keeps the order"
        );
    }
}
