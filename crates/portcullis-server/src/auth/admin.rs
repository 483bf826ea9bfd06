//! Administration: accounts, sessions and signing keys. Admin rights come
//! from the user's current record and a live session in the database,
//! never from the token alone — an HS256 secret leaked from another service
//! cannot mint admin access.

use portcullis_token::Claims;
use serde::Serialize;
use uuid::Uuid;

use super::keys::KeyInfo;
use super::lockout::account_key;
use super::sessions::SessionView;
use super::{Auth, AuthError, User, now, validate};
use crate::store::{Revocation, RevocationKind, Store, UserRecord};

/// A user as administrators see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AdminUser {
    #[serde(flatten)]
    pub user: User,
    pub disabled: bool,
    /// While any lock-out of the account is active.
    pub locked: bool,
}

/// What an administrator may change on an account.
#[derive(Debug, Default)]
pub struct AccountChange {
    pub roles: Option<Vec<String>>,
    pub disabled: Option<bool>,
    pub unlock: bool,
}

const ADMIN: &str = "admin";
const MAX_PAGE: u32 = 200;

fn is_admin(user: &UserRecord) -> bool {
    user.roles.iter().any(|r| r == ADMIN)
}

impl<S: Store> Auth<S> {
    /// The caller, if they are an admin right now with a live session.
    pub async fn require_admin(&self, claims: &Claims) -> Result<UserRecord, AuthError> {
        let forbidden = || AuthError::Forbidden("administrators only");
        let user = self.current_record(claims).await.map_err(|_| forbidden())?;
        let sid: Uuid = claims.sid.parse().map_err(|_| forbidden())?;
        let session = self.store.session(sid).await?;
        let live = session.is_some_and(|s| {
            s.user_id == user.id && s.revoked_at.is_none() && s.expires_at > now()
        });
        if !is_admin(&user) || !live {
            return Err(forbidden());
        }
        Ok(user)
    }

    async fn target(&self, id: &str) -> Result<UserRecord, AuthError> {
        let id: Uuid = id.parse().map_err(|_| AuthError::NotFound)?;
        self.store.user_by_id(id).await?.ok_or(AuthError::NotFound)
    }

    async fn admin_view(&self, user: &UserRecord) -> Result<AdminUser, AuthError> {
        let account = account_key(&user.email);
        let at = now();
        let locked = self.lockout_wait_readonly(&account, at).await?;
        Ok(AdminUser {
            user: User::from(user),
            disabled: user.disabled,
            locked,
        })
    }

    /// `GET /api/admin/users`: a page and the cursor of the next one.
    pub async fn admin_users(
        &self,
        email: Option<&str>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<(Vec<AdminUser>, Option<String>), AuthError> {
        let limit = limit.unwrap_or(50).clamp(1, MAX_PAGE);
        let after = match cursor {
            None => None,
            Some(c) => Some(
                c.parse::<Uuid>()
                    .map_err(|_| AuthError::Invalid("unknown cursor"))?,
            ),
        };
        let email = email
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty());
        let records = self
            .store
            .users_page(email.as_deref(), after, limit + 1)
            .await?;
        let next =
            (records.len() > limit as usize).then(|| records[limit as usize - 1].id.to_string());
        let mut users = Vec::new();
        for record in records.iter().take(limit as usize) {
            users.push(self.admin_view(record).await?);
        }
        Ok((users, next))
    }

    /// `POST /api/admin/users`: without a password, the user gets a reset
    /// mail to choose one.
    pub async fn admin_create(
        &self,
        email: &str,
        name: &str,
        roles: Option<Vec<String>>,
        password: Option<&str>,
    ) -> Result<AdminUser, AuthError> {
        let roles = roles.unwrap_or_else(|| vec!["user".into()]);
        validate::check_roles(&roles)?;
        let user = match password {
            Some(password) => self.create_user(email, password, name, roles).await?,
            None => {
                let email = validate::normalize_email(email)?;
                let name = validate::normalize_name(name)?;
                let user = UserRecord::new(email, name, None, roles, now());
                self.insert_user(&user).await?;
                self.forgot_password(&user.email).await?;
                user
            }
        };
        tracing::info!(target: "audit", event = "admin_user_created", user_id = %user.id);
        self.admin_view(&user).await
    }

    /// `PATCH /api/admin/users/{id}`.
    pub async fn admin_update(
        &self,
        id: &str,
        change: AccountChange,
    ) -> Result<AdminUser, AuthError> {
        let user = self.target(id).await?;
        let at = now();
        if let Some(roles) = &change.roles {
            validate::check_roles(roles)?;
        }
        let demotes = change
            .roles
            .as_ref()
            .is_some_and(|r| !r.iter().any(|x| x == ADMIN));
        let disables = change.disabled == Some(true);
        if is_admin(&user)
            && !user.disabled
            && (demotes || disables)
            && self.store.count_admins().await? <= 1
        {
            return Err(AuthError::Conflict(
                "the last admin cannot be demoted or disabled",
            ));
        }
        if let Some(roles) = change.roles.filter(|r| *r != user.roles) {
            self.store.set_roles(user.id, &roles, at).await?;
            // Access tokens carrying the old roles die; sessions live on and
            // their next refresh carries the new roles.
            let record = self
                .store
                .add_revocation(
                    &Revocation {
                        kind: RevocationKind::User,
                        subject: user.id.to_string(),
                        before: Some(self.next_before(user.id, at)),
                        expires: Some(self.entry_expiry(at)),
                    },
                    at,
                )
                .await?;
            self.revocations.apply_local(std::slice::from_ref(&record));
            self.revocation_written.notify_one();
            tracing::info!(target: "audit", event = "roles_changed", user_id = %user.id);
        }
        if let Some(disabled) = change.disabled.filter(|d| *d != user.disabled) {
            self.store.set_disabled(user.id, disabled, at).await?;
            if disabled {
                self.revoke_user(user.id, None, at).await?;
            }
            tracing::info!(target: "audit", event = if disabled { "user_disabled" } else { "user_enabled" }, user_id = %user.id);
        }
        if change.unlock {
            self.store
                .clear_login_failures(&account_key(&user.email), None)
                .await?;
            tracing::info!(target: "audit", event = "user_unlocked", user_id = %user.id);
        }
        let updated = self
            .store
            .user_by_id(user.id)
            .await?
            .ok_or(AuthError::NotFound)?;
        self.admin_view(&updated).await
    }

    /// `DELETE /api/admin/users/{id}`: its tokens stop working at once.
    pub async fn admin_delete(&self, id: &str) -> Result<(), AuthError> {
        let user = self.target(id).await?;
        if is_admin(&user) && !user.disabled && self.store.count_admins().await? <= 1 {
            return Err(AuthError::Conflict("the last admin cannot be deleted"));
        }
        self.revoke_user(user.id, None, now()).await?;
        self.store.delete_user(user.id).await?;
        tracing::info!(target: "audit", event = "admin_user_deleted", user_id = %user.id);
        Ok(())
    }

    /// `POST /api/admin/users/{id}/password-reset`.
    pub async fn admin_password_reset(&self, id: &str) -> Result<(), AuthError> {
        let user = self.target(id).await?;
        self.forgot_password(&user.email).await
    }

    /// `GET /api/admin/users/{id}/sessions`.
    pub async fn admin_sessions(&self, id: &str) -> Result<Vec<SessionView>, AuthError> {
        let user = self.target(id).await?;
        self.sessions_of(user.id, None).await
    }

    /// `DELETE /api/admin/users/{id}/sessions/{sid}`.
    pub async fn admin_end_session(&self, id: &str, sid: &str) -> Result<(), AuthError> {
        let user = self.target(id).await?;
        let sid: Uuid = sid.parse().map_err(|_| AuthError::NotFound)?;
        if !self.revoke_one_session(sid, Some(user.id), now()).await? {
            return Err(AuthError::NotFound);
        }
        Ok(())
    }

    /// `GET /api/admin/keys`.
    pub async fn admin_keys(&self) -> Result<Vec<KeyInfo>, AuthError> {
        if !self.keys.is_stored() {
            return Err(AuthError::Conflict("HS256 keys come from JWT_SECRET"));
        }
        Ok(super::keys::list(&self.store, now()).await?)
    }

    /// `POST /api/admin/keys/rotate`.
    pub async fn admin_rotate_key(
        &self,
        immediately: bool,
    ) -> Result<crate::store::KeyRecord, AuthError> {
        let record = self
            .keys
            .rotate(&self.store, now(), immediately, self.access_ttl)
            .await?
            .ok_or(AuthError::Conflict(
                "rotate an HS256 secret with JWT_SECRET_PREVIOUS",
            ))?;
        self.keys.reload(&self.store, now()).await?;
        tracing::info!(target: "audit", event = "key_rotated", kid = %record.kid);
        Ok(record)
    }

    /// `POST /api/admin/keys/{kid}/revoke`: the key leaves the JWKS at once,
    /// its tokens stop verifying everywhere, and the feed carries `{kid}`.
    pub async fn admin_revoke_key(&self, kid: &str) -> Result<(), AuthError> {
        if !self.keys.is_stored() {
            return Err(AuthError::Conflict("HS256 keys come from JWT_SECRET"));
        }
        let at = now();
        let record = self
            .store
            .revoke_signing_key(kid, at, self.entry_expiry(at))
            .await?
            .ok_or(AuthError::NotFound)?;
        self.revocations.apply_local(std::slice::from_ref(&record));
        self.keys.reload(&self.store, at).await?;
        self.revocation_written.notify_one();
        tracing::warn!(target: "audit", event = "key_revoked", kid = %kid);
        Ok(())
    }
}

impl From<super::keys::KeysError> for AuthError {
    fn from(e: super::keys::KeysError) -> Self {
        tracing::error!(error = %e, "key operation failed");
        Self::Unavailable
    }
}
