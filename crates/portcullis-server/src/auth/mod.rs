//! The domain: accounts, passwords, sessions, token issuing and checking.
//! Nothing here knows HTTP; [`AuthError`] says what went wrong in domain
//! terms and `http::error` maps it to a status and code.

pub mod account;
pub mod admin;
mod argon2id;
pub mod batch;
pub mod csrf;
pub mod hash_pool;
pub mod import;
pub mod keys;
pub mod limits;
pub mod lockout;
pub mod password;
pub mod refresh_batches;
pub mod revocation;
pub mod secrets;
pub mod sessions;
pub mod validate;
pub mod verified;

use std::sync::Arc;
use std::time::Duration;

use portcullis_token::{Audience, Claims, InvalidReason, Validator, VerifyError};
use time::OffsetDateTime;
use uuid::Uuid;

use self::keys::Keys;
use self::password::{PasswordError, Passwords};
use self::revocation::Revocations;
use self::secrets::TokenHasher;
use self::validate::ValidationError;
use crate::config::{Config, Registration};
use crate::store::{NewRefreshToken, NewSession, Store, StoreError, TokenHolder, UserRecord};

/// Label of the refresh-token lookup hash key (never used for anything else).
pub const REFRESH_LOOKUP_LABEL: &[u8] = b"refresh-token-lookup";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("{0}")]
    WeakPassword(&'static str),
    #[error("an account with this email already exists")]
    UserExists,
    #[error("invalid email or password")]
    InvalidCredentials,
    /// A wrong current password on an authenticated change (403).
    #[error("the password is not correct")]
    WrongPassword,
    #[error("authentication required")]
    MissingToken,
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    #[error("refresh token reused: the session has been revoked")]
    RefreshTokenReused,
    #[error("not found")]
    NotFound,
    /// An unknown, used or expired mail token.
    #[error("this link is invalid or has expired")]
    InvalidLink,
    #[error("confirm your e-mail address first")]
    EmailNotVerified,
    #[error("{0}")]
    Conflict(&'static str),
    /// Too many attempts; the wait is until the limit lifts.
    #[error("too many attempts, retry later")]
    RateLimited(Duration),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("invalid token")]
    InvalidToken,
    #[error("token expired")]
    TokenExpired,
    #[error("token revoked")]
    TokenRevoked,
    /// A dependency did not answer, or the hashing queue is full.
    #[error("service temporarily unavailable")]
    Unavailable,
}

impl From<ValidationError> for AuthError {
    fn from(e: ValidationError) -> Self {
        match e {
            ValidationError::Invalid(why) => Self::Invalid(why),
            ValidationError::WeakPassword(why) => Self::WeakPassword(why),
        }
    }
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        Self::Unavailable
    }
}

impl From<PasswordError> for AuthError {
    fn from(e: PasswordError) -> Self {
        if let PasswordError::Internal(reason) = &e {
            tracing::error!(%reason, "password hashing failure");
        }
        Self::Unavailable
    }
}

/// The user as clients see it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    pub email_verified: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&UserRecord> for User {
    fn from(r: &UserRecord) -> Self {
        Self {
            id: r.id,
            email: r.email.clone(),
            name: r.name.clone(),
            roles: r.roles.clone(),
            email_verified: r.email_verified,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenPair {
    /// A signed JWT (`typ: at+jwt`).
    pub access_token: String,
    /// Opaque; spent by its first use (store the successor).
    pub refresh_token: String,
    #[schema(value_type = String, example = "Bearer")]
    pub token_type: &'static str,
    /// The access token's lifetime in seconds.
    pub expires_in: u64,
    /// The session the pair belongs to (cookie mode binds its CSRF token to
    /// it); never serialised.
    #[serde(skip)]
    pub session_id: Uuid,
}

/// Where a request came from, recorded on sessions and audit events.
#[derive(Debug, Clone, Default)]
pub struct ClientContext {
    pub ip: Option<String>,
    /// The key the address is counted under (IPv6 by /64).
    pub rate_key: String,
    pub user_agent: Option<String>,
}

/// The per-address budgets of API.md (each with its own setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Login,
    Signup,
    Forgot,
    Resend,
}

/// Mail budgets: per recipient (API.md) and for the whole server, so one
/// inbox cannot be flooded from many addresses and no flood leaves at all.
#[derive(Debug, Clone, Copy)]
pub struct MailLimits {
    pub per_recipient: limits::Rate,
    pub global: limits::Rate,
}

/// API.md's rate limits and lock-out rules.
#[derive(Debug, Clone, Copy)]
pub struct LimitSettings {
    pub login_per_address: limits::Rate,
    pub lockout_threshold: u32,
    pub lockout_duration: Duration,
    pub account_failures: limits::Rate,
    pub signup_per_address: limits::Rate,
}

/// Debug never shows the password.
pub struct RegisterInput<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub name: &'a str,
}

pub struct LoginInput<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub device_name: Option<&'a str>,
}

impl std::fmt::Debug for RegisterInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterInput")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LoginInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginInput")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// What the domain is built from (each made by `app` at start).
#[derive(Debug)]
pub struct Parts<S> {
    pub store: S,
    pub keys: Keys,
    pub passwords: Passwords,
    /// Lookup hashes of refresh tokens.
    pub refresh_hasher: TokenHasher,
    /// Lookup hashes of mail tokens (a key of its own).
    pub mail_hasher: TokenHasher,
    pub revocations: Revocations,
    pub limiter: limits::Limiter,
    pub mailer: crate::mail::Mailer,
    pub csrf: csrf::CsrfKey,
}

pub struct Auth<S: Store> {
    pub store: S,
    pub keys: Keys,
    pub passwords: Passwords,
    pub revocations: Arc<Revocations>,
    /// Woken after this instance writes a revocation, so the poller confirms
    /// it for the feed at once rather than at its next tick.
    pub revocation_written: Arc<tokio::sync::Notify>,
    /// Access tokens already verified in full.
    verified: verified::VerifiedTokens,
    /// Refresh lookups and rotations waiting for the database writer.
    refresh_lookups: batch::Batcher<refresh_batches::Lookups<S>>,
    rotations: batch::Batcher<refresh_batches::Rotations<S>>,
    pub limiter: limits::Limiter,
    /// Cookie mode's CSRF tokens.
    pub csrf: csrf::CsrfKey,
    limits: LimitSettings,
    mail_limits: MailLimits,
    mailer: crate::mail::Mailer,
    templates: crate::mail::Templates,
    /// Lookup hashes of mail tokens (its own key, apart from refresh tokens).
    mail_hasher: TokenHasher,
    public_url: String,
    require_verification: bool,
    refresh_hasher: TokenHasher,
    validator: Validator,
    issuer: String,
    audience: String,
    access_ttl: Duration,
    refresh_ttl: Duration,
    refresh_grace: Duration,
    session_max_lifetime: Duration,
    session_idle_timeout: Duration,
    registration: Registration,
    registration_domains: Vec<String>,
}

impl<S: Store> std::fmt::Debug for Auth<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// The current time at the precision every store keeps (microseconds), so
/// a value answered at creation equals the one read back later.
pub(crate) fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_microsecond(now.microsecond()).unwrap_or(now)
}

impl<S: Store> Auth<S> {
    pub fn new(config: &Config, parts: Parts<S>) -> Self {
        let Parts {
            store,
            keys,
            passwords,
            refresh_hasher,
            mail_hasher,
            revocations,
            limiter,
            mailer,
            csrf,
        } = parts;
        Self {
            limiter,
            csrf,
            limits: config.limits,
            mail_limits: config.mail_limits,
            mailer,
            mail_hasher,
            templates: crate::mail::Templates::new(config.mail_templates_dir.clone()),
            public_url: config.public_url.clone(),
            require_verification: config.require_email_verification,
            store,
            keys,
            passwords,
            revocations: Arc::new(revocations),
            revocation_written: Arc::new(tokio::sync::Notify::new()),
            verified: verified::VerifiedTokens::default(),
            refresh_lookups: batch::Batcher::default(),
            rotations: batch::Batcher::default(),
            refresh_hasher,
            validator: Validator::new(&config.issuer, &config.audience),
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_ttl: config.access_ttl,
            refresh_ttl: config.refresh_ttl,
            refresh_grace: config.refresh_grace,
            session_max_lifetime: config.session_max_lifetime,
            session_idle_timeout: config.session_idle_timeout,
            registration: config.registration,
            registration_domains: config.registration_domains.clone(),
        }
    }

    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// Creates an account (no session); used by register and `user create`.
    pub async fn create_user(
        &self,
        email: &str,
        password: &str,
        name: &str,
        roles: Vec<String>,
    ) -> Result<UserRecord, AuthError> {
        let email = validate::normalize_email(email)?;
        let name = validate::normalize_name(name)?;
        validate::check_password(password)?;
        validate::check_roles(&roles)?;
        // Cheap check first so a taken address costs no hash; the insert
        // still catches the race.
        if self.store.user_by_email(&email).await?.is_some() {
            return Err(AuthError::UserExists);
        }
        let hash = self.passwords.hash(password).await?;
        let user = UserRecord::new(email, name, Some(hash), roles, now());
        self.insert_user(&user).await?;
        Ok(user)
    }

    /// Stores a new account; a taken address is `UserExists`.
    async fn insert_user(&self, user: &UserRecord) -> Result<(), AuthError> {
        match self.store.create_user(user).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(_)) => Err(AuthError::UserExists),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn register(
        &self,
        input: RegisterInput<'_>,
        client: &ClientContext,
    ) -> Result<(User, Option<TokenPair>), AuthError> {
        if self.registration != Registration::Open {
            return Err(AuthError::Forbidden("registration is closed"));
        }
        if !self.registration_domains.is_empty() {
            let email = validate::normalize_email(input.email)?;
            let domain = email.rsplit('@').next().unwrap_or_default();
            if !self.registration_domains.iter().any(|d| d == domain) {
                return Err(AuthError::Forbidden(
                    "registration is not open to this email domain",
                ));
            }
        }
        let user = self
            .create_user(input.email, input.password, input.name, vec!["user".into()])
            .await?;
        tracing::info!(target: "audit", event = "register", user_id = %user.id, ip = client.ip.as_deref());
        self.send_verification(&user).await?;
        if self.require_verification {
            return Ok((User::from(&user), None));
        }
        let (tokens, _) = self.open_session(&user, None, client).await?;
        Ok((User::from(&user), Some(tokens)))
    }

    /// Takes one event from a per-address budget (checked before the body
    /// is read, as API.md orders 429 before 413/415).
    pub async fn throttle(&self, bucket: Bucket, client: &ClientContext) -> Result<(), AuthError> {
        let (name, rate) = match bucket {
            Bucket::Login => ("login", self.limits.login_per_address),
            Bucket::Signup => ("signup", self.limits.signup_per_address),
            Bucket::Forgot => ("forgot", self.limits.signup_per_address),
            Bucket::Resend => ("resend", self.limits.signup_per_address),
        };
        self.limiter
            .take(name, &client.rate_key, rate)
            .await
            .map_err(AuthError::RateLimited)
    }

    /// Checks `password` for the account typed as `email`, with the lock-out
    /// rules: a locked pair or a slowed-down account is refused (429) after
    /// the same work as a wrong password, failures are counted (unknown
    /// e-mails too), and a success resets the pair.
    pub(crate) async fn check_password(
        &self,
        email: &str,
        password: &str,
        client: &ClientContext,
    ) -> Result<(Option<UserRecord>, password::Verdict), AuthError> {
        // Login does not validate the format: a malformed address simply
        // matches no account. Control characters (NUL cannot even be sent to
        // PostgreSQL) match none either.
        let account = email.trim().to_lowercase();
        let key = lockout::account_key(&account);
        let at = now();
        let locked = self.lockout_wait(&key, &client.rate_key, at).await?;
        let user = if account.chars().any(char::is_control) {
            None
        } else {
            self.store.user_by_email(&account).await?
        };
        let stored = user
            .as_ref()
            .and_then(|u| u.password_hash.as_deref())
            .filter(|_| locked.is_none());
        let verdict = self.passwords.verify(password, stored).await?;
        if let Some(wait) = locked {
            tracing::info!(target: "audit", event = "login_locked", user_id = user.as_ref().map(|u| u.id.to_string()), ip = client.ip.as_deref());
            return Err(AuthError::RateLimited(wait));
        }
        if verdict.matches {
            self.store
                .clear_login_failures(&key, Some(&client.rate_key))
                .await?;
        } else {
            self.count_failure(&key, &client.rate_key, at).await?;
        }
        Ok((user, verdict))
    }

    pub async fn login(
        &self,
        input: LoginInput<'_>,
        client: &ClientContext,
    ) -> Result<(User, TokenPair), AuthError> {
        let (user, verdict) = self
            .check_password(input.email, input.password, client)
            .await?;
        let user = match user {
            Some(user) if verdict.matches => user,
            found => {
                tracing::info!(target: "audit", event = "login_failed", user_id = found.map(|u| u.id.to_string()), ip = client.ip.as_deref());
                return Err(AuthError::InvalidCredentials);
            }
        };
        if user.disabled {
            tracing::info!(target: "audit", event = "login_refused_disabled", user_id = %user.id, ip = client.ip.as_deref());
            return Err(AuthError::Forbidden("this account is disabled"));
        }
        if self.require_verification && !user.email_verified {
            return Err(AuthError::EmailNotVerified);
        }
        if verdict.needs_rehash {
            let hash = self.passwords.hash(input.password).await?;
            self.store.set_password_hash(user.id, &hash, now()).await?;
            tracing::info!(target: "audit", event = "password_rehashed", user_id = %user.id);
        }
        let (tokens, session) = self.open_session(&user, input.device_name, client).await?;
        self.maybe_new_device_notice(&user, client, session).await?;
        tracing::info!(target: "audit", event = "login", user_id = %user.id, ip = client.ip.as_deref());
        Ok((User::from(&user), tokens))
    }

    async fn open_session(
        &self,
        user: &UserRecord,
        device_name: Option<&str>,
        client: &ClientContext,
    ) -> Result<(TokenPair, Uuid), AuthError> {
        let at = now();
        let session = NewSession {
            id: Uuid::new_v4(),
            user_id: user.id,
            device_name: device_name
                .map(|d| {
                    d.chars()
                        .filter(|c| !c.is_control())
                        .take(100)
                        .collect::<String>()
                })
                .map(|d| d.trim().to_owned())
                .filter(|d| !d.is_empty()),
            user_agent: client
                .user_agent
                .as_ref()
                .map(|ua| ua.chars().filter(|c| !c.is_control()).take(512).collect()),
            ip: client.ip.clone(),
            created_at: at,
            expires_at: at + self.session_max_lifetime,
        };
        let refresh_token = secrets::random_token().map_err(|_| AuthError::Unavailable)?;
        let refresh = NewRefreshToken {
            hash: self.refresh_hasher.hash(&refresh_token),
            issued_at: at,
            expires_at: (at + self.refresh_ttl).min(session.expires_at),
        };
        let access_token = self.issue_access_token(&user.holder(), session.id, at)?;
        self.store.create_session(&session, &refresh).await?;
        let pair = TokenPair {
            access_token,
            refresh_token,
            token_type: "Bearer",
            expires_in: self.access_ttl.as_secs(),
            session_id: session.id,
        };
        Ok((pair, session.id))
    }

    fn issue_access_token(
        &self,
        user: &TokenHolder,
        session_id: Uuid,
        at: OffsetDateTime,
    ) -> Result<String, AuthError> {
        // Never inside a `sub`/`before` entry written for this user, even in
        // the same second as the change that wrote it.
        let iat = at.unix_timestamp().max(
            self.revocations
                .user_before(&user.id.to_string())
                .unwrap_or(i64::MIN),
        );
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: user.id.to_string(),
            aud: Audience::One(self.audience.clone()),
            exp: iat + i64::try_from(self.access_ttl.as_secs()).unwrap_or(i64::MAX / 2),
            iat,
            nbf: Some(iat),
            jti: Uuid::new_v4().to_string(),
            sid: session_id.to_string(),
            email: user.email.clone(),
            name: user.name.clone(),
            roles: user.roles.clone(),
        };
        self.keys.sign(&claims).map_err(|e| {
            tracing::error!(error = %e, "signing failed");
            AuthError::Unavailable
        })
    }

    /// Verifies an access token (signature, claims, expiry) and checks the
    /// in-memory revocation set: no I/O, except that a `kid` this instance
    /// does not know makes it reload the keys (at most once a second) in
    /// case another instance just created one.
    pub async fn authenticate(&self, token: &str) -> Result<Arc<Claims>, AuthError> {
        let at = now().unix_timestamp();
        if let Some(claims) = self.verified.get(token, at, &self.keys.ring()) {
            return self.unless_revoked(claims);
        }
        crate::metrics::CACHE_MISS_COUNT.increment(1);
        let mut verified = self.keys.verify(token, &self.validator, at);
        if matches!(
            verified,
            Err(VerifyError::Invalid(InvalidReason::UnknownKeyId))
        ) && self.keys.may_reload()
        {
            if let Err(e) = self.keys.reload(&self.store, now()).await {
                tracing::warn!(error = %e, "reloading keys failed");
            }
            verified = self.keys.verify(token, &self.validator, at);
        }
        match verified {
            Ok(claims) => {
                let claims = Arc::new(claims);
                self.verified.insert(token, &claims);
                self.unless_revoked(claims)
            }
            Err(VerifyError::Expired(_)) => Err(AuthError::TokenExpired),
            Err(VerifyError::Invalid(reason)) => {
                tracing::debug!(%reason, "token refused");
                Err(AuthError::InvalidToken)
            }
        }
    }

    fn unless_revoked(&self, claims: Arc<Claims>) -> Result<Arc<Claims>, AuthError> {
        if self.revocations.is_revoked(&claims, None) {
            return Err(AuthError::TokenRevoked);
        }
        Ok(claims)
    }

    /// The token's user, read from the store: a validly signed token whose
    /// user never existed is `InvalidToken`; a disabled one is revoked.
    pub async fn current_user(&self, claims: &Claims) -> Result<User, AuthError> {
        let id: Uuid = claims.sub.parse().map_err(|_| AuthError::InvalidToken)?;
        match self.store.user_by_id(id).await? {
            None => Err(AuthError::InvalidToken),
            Some(user) if user.disabled => Err(AuthError::TokenRevoked),
            Some(user) => Ok(User::from(&user)),
        }
    }
}
