//! Mail-driven account flows: password reset, e-mail verification, e-mail
//! change, account deletion, and notice mails. Tokens are 256-bit, single
//! use, stored as keyed hashes, and a newer one supersedes older ones.

use std::time::Duration;

use portcullis_token::Claims;
use time::OffsetDateTime;
use uuid::Uuid;

use super::lockout::account_key;
use super::{Auth, AuthError, ClientContext, now, secrets, validate};
use crate::mail::Kind;
use crate::store::{MailTokenRecord, Store, StoreError, UserRecord};

const RESET: &str = "reset";
const VERIFY: &str = "verify";
const EMAIL: &str = "email";

fn lifetime(purpose: &str) -> Duration {
    match purpose {
        RESET => Duration::from_secs(3600),
        _ => Duration::from_secs(24 * 3600),
    }
}

/// The fragment key of the account page for each purpose.
fn fragment(purpose: &str) -> &'static str {
    match purpose {
        RESET => "reset",
        VERIFY => "verify",
        _ => "email",
    }
}

impl<S: Store> Auth<S> {
    /// Whether one more mail may go to `recipient` (and out at all); a
    /// refused mail creates no token, so an earlier one stays valid.
    async fn mail_allowed(&self, recipient: &str) -> bool {
        let global = self
            .limiter
            .take("mail", "all", self.mail_limits.global)
            .await;
        let per_recipient = self
            .limiter
            .take(
                "mail-to",
                &account_key(recipient),
                self.mail_limits.per_recipient,
            )
            .await;
        if global.is_err() || per_recipient.is_err() {
            tracing::warn!(target: "audit", event = "mail_capped");
            return false;
        }
        true
    }

    /// Creates a token of `purpose` for `user`, superseding older ones, and
    /// mails its link to `to`.
    async fn send_token(
        &self,
        user: &UserRecord,
        purpose: &'static str,
        to: &str,
        new_email: Option<&str>,
    ) -> Result<(), AuthError> {
        if !self.mail_allowed(to).await {
            return Ok(());
        }
        let token = secrets::random_token().map_err(|_| AuthError::Unavailable)?;
        let at = now();
        self.store
            .replace_mail_token(&MailTokenRecord {
                hash: self.mail_hasher.hash(&token),
                purpose: purpose.to_owned(),
                user_id: user.id,
                new_email: new_email.map(str::to_owned),
                created_at: at,
                expires_at: at + lifetime(purpose),
                used_at: None,
            })
            .await?;
        let link = format!("{}/account#{}={token}", self.public_url, fragment(purpose));
        let kind = match purpose {
            RESET => Kind::PasswordReset,
            VERIFY => Kind::VerifyEmail,
            _ => Kind::ConfirmEmailChange,
        };
        self.mail(kind, to, user, &[("link", &link)]);
        Ok(())
    }

    /// `extra` comes first, so it can override the defaults (e.g. the
    /// e-mail named in a notice to the old address is the new one).
    fn mail(&self, kind: Kind, to: &str, user: &UserRecord, extra: &[(&str, &str)]) {
        let mut values = extra.to_vec();
        values.extend_from_slice(&[("name", user.name.as_str()), ("email", to)]);
        self.mailer.send(self.templates.render(kind, to, &values));
    }

    /// A notice that needs no token (capped like every mail).
    async fn notice(&self, kind: Kind, to: &str, user: &UserRecord, extra: &[(&str, &str)]) {
        if self.mail_allowed(to).await {
            self.mail(kind, to, user, extra);
        }
    }

    /// The verification mail after registration.
    pub(crate) async fn send_verification(&self, user: &UserRecord) -> Result<(), AuthError> {
        self.send_token(user, VERIFY, &user.email, None).await
    }

    /// `POST /api/auth/password/forgot`, the part after the 202: runs in the
    /// background so an existing and an unknown e-mail answer alike.
    pub async fn forgot_password(&self, email: &str) -> Result<(), AuthError> {
        let Some(user) = self.store.user_by_email(email).await? else {
            return Ok(());
        };
        if user.disabled {
            return Ok(());
        }
        self.send_token(&user, RESET, &user.email, None).await
    }

    /// `POST /api/auth/email/resend`, likewise in the background.
    pub async fn resend_verification(&self, email: &str) -> Result<(), AuthError> {
        match self.store.user_by_email(email).await? {
            Some(user) if !user.disabled && !user.email_verified => {
                self.send_token(&user, VERIFY, &user.email, None).await
            }
            _ => Ok(()),
        }
    }

    /// A live, unused token of `purpose`.
    async fn mail_token(&self, token: &str, purpose: &str) -> Result<MailTokenRecord, AuthError> {
        self.store
            .mail_token(&self.mail_hasher.hash(token))
            .await?
            .filter(|t| t.purpose == purpose && t.used_at.is_none() && t.expires_at > now())
            .ok_or(AuthError::InvalidLink)
    }

    async fn consume(
        &self,
        record: &MailTokenRecord,
        at: OffsetDateTime,
    ) -> Result<UserRecord, AuthError> {
        let user = self
            .store
            .user_by_id(record.user_id)
            .await?
            .ok_or(AuthError::InvalidLink)?;
        if !self.store.use_mail_token(&record.hash, at).await? {
            return Err(AuthError::InvalidLink);
        }
        Ok(user)
    }

    /// `POST /api/auth/password/reset`: every session ends, the e-mail counts
    /// as verified, and lock-outs are lifted.
    pub async fn reset_password(&self, token: &str, new_password: &str) -> Result<(), AuthError> {
        let record = self.mail_token(token, RESET).await?;
        validate::check_password(new_password)?;
        let hash = self.passwords.hash(new_password).await?;
        let at = now();
        let user = self.consume(&record, at).await?;
        self.store.set_password_hash(user.id, &hash, at).await?;
        self.store.set_email_verified(user.id, at).await?;
        self.store.drop_mail_tokens(user.id, RESET).await?;
        self.store
            .clear_login_failures(&account_key(&user.email), None)
            .await?;
        self.revoke_user(user.id, None, at).await?;
        tracing::info!(target: "audit", event = "password_reset", user_id = %user.id);
        Ok(())
    }

    /// `POST /api/auth/email/verify`.
    pub async fn verify_email(&self, token: &str) -> Result<(), AuthError> {
        let record = self.mail_token(token, VERIFY).await?;
        let at = now();
        let user = self.consume(&record, at).await?;
        self.store.set_email_verified(user.id, at).await?;
        tracing::info!(target: "audit", event = "email_verified", user_id = %user.id);
        Ok(())
    }

    /// `POST /api/auth/email`: a confirmation to the new address, a notice to
    /// the old one.
    pub async fn request_email_change(
        &self,
        claims: &Claims,
        new_email: &str,
        password: &str,
        client: &ClientContext,
    ) -> Result<(), AuthError> {
        let user = self.reconfirmed(claims, password, client).await?;
        let new_email = validate::normalize_email(new_email)?;
        if self.store.user_by_email(&new_email).await?.is_some() {
            return Err(AuthError::UserExists);
        }
        self.send_token(&user, EMAIL, &new_email, Some(&new_email))
            .await?;
        self.notice(
            Kind::EmailChangedNotice,
            &user.email,
            &user,
            &[("email", &new_email)],
        )
        .await;
        tracing::info!(target: "audit", event = "email_change_requested", user_id = %user.id);
        Ok(())
    }

    /// `POST /api/auth/email/confirm`.
    pub async fn confirm_email_change(&self, token: &str) -> Result<(), AuthError> {
        let record = self.mail_token(token, EMAIL).await?;
        let new_email = record.new_email.clone().ok_or(AuthError::InvalidLink)?;
        let at = now();
        let user = self.consume(&record, at).await?;
        match self.store.set_email(user.id, &new_email, at).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(AuthError::UserExists),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(target: "audit", event = "email_changed", user_id = %user.id);
        Ok(())
    }

    /// `DELETE /api/auth/me`: the password again, and never the last admin.
    pub async fn delete_account(
        &self,
        claims: &Claims,
        password: &str,
        client: &ClientContext,
    ) -> Result<(), AuthError> {
        let user = self.reconfirmed(claims, password, client).await?;
        if user.roles.iter().any(|r| r == "admin") && self.store.count_admins().await? <= 1 {
            return Err(AuthError::Conflict("the last admin cannot be deleted"));
        }
        let at = now();
        self.revoke_user(user.id, None, at).await?;
        self.store.delete_user(user.id).await?;
        tracing::info!(target: "audit", event = "account_deleted", user_id = %user.id);
        Ok(())
    }

    /// Notices after a password change: older reset links die, and the owner
    /// hears of it.
    pub(crate) async fn after_password_change(&self, user: &UserRecord) -> Result<(), AuthError> {
        self.store.drop_mail_tokens(user.id, RESET).await?;
        let link = format!("{}/account", self.public_url);
        self.notice(
            Kind::PasswordChangedNotice,
            &user.email,
            user,
            &[("link", &link)],
        )
        .await;
        Ok(())
    }

    /// A notice when a sign-in comes from a device (user agent) that none of
    /// the user's other live sessions has.
    pub(crate) async fn maybe_new_device_notice(
        &self,
        user: &UserRecord,
        client: &ClientContext,
        new_session: Uuid,
    ) -> Result<(), AuthError> {
        let others = self
            .store
            .other_sessions(user.id, new_session, client.user_agent.as_deref(), now())
            .await?;
        if others.any && !others.same_user_agent {
            let device = client
                .user_agent
                .clone()
                .unwrap_or_else(|| "unknown device".into());
            self.notice(
                Kind::NewSignInNotice,
                &user.email,
                user,
                &[("device", &device)],
            )
            .await;
        }
        Ok(())
    }

    /// The token's user, after they typed their password again (a wrong one
    /// counts as a failed login and is `403 invalid_credentials`).
    pub(crate) async fn reconfirmed(
        &self,
        claims: &Claims,
        password: &str,
        client: &ClientContext,
    ) -> Result<UserRecord, AuthError> {
        let user = self.current_record(claims).await?;
        let (_, verdict) = self.check_password(&user.email, password, client).await?;
        if !verdict.matches {
            tracing::info!(target: "audit", event = "password_reconfirmation_failed", user_id = %user.id);
            return Err(AuthError::WrongPassword);
        }
        Ok(user)
    }

    /// The token's user record (not the client view).
    pub(crate) async fn current_record(&self, claims: &Claims) -> Result<UserRecord, AuthError> {
        let id: Uuid = claims.sub.parse().map_err(|_| AuthError::InvalidToken)?;
        match self.store.user_by_id(id).await? {
            None => Err(AuthError::InvalidToken),
            Some(user) if user.disabled => Err(AuthError::TokenRevoked),
            Some(user) => Ok(user),
        }
    }
}
