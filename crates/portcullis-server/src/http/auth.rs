//! `/api/auth/*`: register, login, me.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::{
    AppJson, Authenticated, Client, Forgot, Login, MaybeJson, Resend, Signup, Throttle,
    bearer_token, check_csrf, check_origin,
};
use super::openapi::ErrorBody;
use super::{AppState, cookies};
use crate::auth::{AuthError, LoginInput, RegisterInput, TokenPair, User};

// The request rules as schemas state them (validate.rs enforces them):
// an e-mail has one `@`, 1–64 characters before it and a dot in the domain,
// at most 254 characters as sent (surrounding whitespace is trimmed, the
// address lower-cased); a name is not blank and has no control characters.

/// Unknown members are ignored (never applied).
#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(
        max_length = 254,
        pattern = r"^\s*[^@\s\x00-\x1f\x7f-\x9f]{1,64}@[^@\s.\x00-\x1f\x7f-\x9f]+(\.[^@\s.\x00-\x1f\x7f-\x9f]+)+\s*$",
        example = "ada@example.com"
    )]
    email: String,
    /// 8 to 128 characters, not a well-known password.
    #[schema(min_length = 8, max_length = 128, example = "violet hamster teapot 47")]
    password: String,
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        example = "Ada"
    )]
    name: String,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(
        max_length = 254,
        pattern = r"^\s*[^@\s\x00-\x1f\x7f-\x9f]{1,64}@[^@\s.\x00-\x1f\x7f-\x9f]+(\.[^@\s.\x00-\x1f\x7f-\x9f]+)+\s*$",
        example = "ada@example.com"
    )]
    email: String,
    #[schema(example = "violet hamster teapot 47")]
    password: String,
    /// Shown in the session list; control characters are dropped and it is
    /// cut to 100 characters.
    device_name: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UserWithTokens {
    user: User,
    /// Absent when registration waits for e-mail verification.
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<TokenPair>,
}

/// `?mode=cookie`: answer with HttpOnly cookies instead of token strings.
/// Any other value of `mode` is refused, so a typo never hands tokens to
/// page scripts unnoticed.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Mode {
    #[param(inline)]
    mode: Option<ModeName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ModeName {
    Cookie,
}

impl Mode {
    fn cookie(&self) -> bool {
        self.mode == Some(ModeName::Cookie)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Mode {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let mut mode = None;
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if name == "mode" {
                if value != "cookie" {
                    return Err(ApiError::invalid_request("mode must be cookie"));
                }
                mode = Some(ModeName::Cookie);
            }
        }
        Ok(Self { mode })
    }
}

/// The cookie-mode body: no token strings.
#[derive(serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CookieBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<User>)]
    user: Option<&'a User>,
    #[schema(value_type = String, example = "Bearer")]
    token_type: &'static str,
    /// The access token's lifetime in seconds.
    expires_in: u64,
}

/// What a token answer carries: the pair (with the user on login and
/// register), or in cookie mode only the user and the lifetime.
#[derive(serde::Serialize, ToSchema)]
#[serde(untagged)]
pub(super) enum TokenAnswer<'a> {
    Tokens(UserWithTokens),
    Pair(TokenPair),
    Cookies(CookieBody<'a>),
}

/// A token answer: the pair in the body, or in cookie mode as cookies with a
/// fresh CSRF token bound to the session.
fn tokens_response(
    state: &AppState,
    status: StatusCode,
    user: Option<&User>,
    pair: TokenPair,
    cookie: bool,
) -> Response {
    if !cookie {
        let answer = match user {
            Some(user) => TokenAnswer::Tokens(UserWithTokens {
                user: user.clone(),
                tokens: Some(pair),
            }),
            None => TokenAnswer::Pair(pair),
        };
        return no_store(status, answer);
    }
    let csrf = state.auth.csrf.issue(pair.session_id);
    let cookies = cookies::for_pair(&pair, csrf, state.cookie_secure, state.cookie_lifetime);
    let body = TokenAnswer::Cookies(CookieBody {
        user,
        token_type: pair.token_type,
        expires_in: pair.expires_in,
    });
    let mut response = no_store(status, body);
    for value in cookies {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Token responses must never be stored by a cache (RFC 6749 §5.1).
fn no_store(status: StatusCode, body: impl serde::Serialize) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[utoipa::path(post, path = "/api/auth/register", tag = "auth", params(Mode),
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered and signed in (a session is opened as by login); with REQUIRE_EMAIL_VERIFICATION only `{user}`, no tokens", body = TokenAnswer),
        (status = 400, description = "invalid_request or weak_password", body = ErrorBody),
        (status = 403, description = "forbidden: registration is closed or the e-mail's domain is not allowed; csrf_failed for a cross-site cookie-mode request", body = ErrorBody),
        (status = 409, description = "user_exists", body = ErrorBody),
        (status = 429, description = "rate_limited (SIGNUP_RATE_PER_ADDRESS), with Retry-After", body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    Client(client): Client,
    _budget: Throttle<Signup>,
    mode: Mode,
    headers: HeaderMap,
    AppJson(body): AppJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    if mode.cookie() {
        check_origin(&headers, &state)?;
    }
    let (user, tokens) = state
        .auth
        .register(
            RegisterInput {
                email: &body.email,
                password: &body.password,
                name: &body.name,
            },
            &client,
        )
        .await?;
    Ok(match tokens {
        Some(pair) => tokens_response(
            &state,
            StatusCode::CREATED,
            Some(&user),
            pair,
            mode.cookie(),
        ),
        // Waiting for e-mail verification: no tokens, no cookies.
        None => no_store(StatusCode::CREATED, UserWithTokens { user, tokens: None }),
    })
}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth", params(Mode),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in: a new session", body = TokenAnswer),
        (status = 401, description = "invalid_credentials: unknown e-mail or wrong password, alike", body = ErrorBody),
        (status = 403, description = "forbidden (disabled account), email_not_verified, or csrf_failed (cross-site cookie-mode request)", body = ErrorBody),
        (status = 429, description = "rate_limited: LOGIN_RATE_PER_ADDRESS or a locked account/address pair, with Retry-After", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    _budget: Throttle<Login>,
    mode: Mode,
    headers: HeaderMap,
    AppJson(body): AppJson<LoginRequest>,
) -> Result<Response, ApiError> {
    if mode.cookie() {
        check_origin(&headers, &state)?;
    }
    let (user, pair) = state
        .auth
        .login(
            LoginInput {
                email: &body.email,
                password: &body.password,
                device_name: body.device_name.as_deref(),
            },
            &client,
        )
        .await?;
    Ok(tokens_response(
        &state,
        StatusCode::OK,
        Some(&user),
        pair,
        mode.cookie(),
    ))
}

#[utoipa::path(get, path = "/api/auth/me", tag = "account", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The current user, read from the database", body = User)))]
pub async fn me(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Response, ApiError> {
    let user = state.auth.current_user(&claims).await?;
    Ok(no_store(StatusCode::OK, user))
}

/// `{refresh_token}`; a missing field counts as no token (401, not 400).
#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    refresh_token: Option<String>,
}

/// The refresh token from the body, else from the cookie; a cookie
/// credential needs the CSRF checks and is answered with cookies only (its
/// tokens never reach page scripts).
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", params(Mode),
    request_body(content = RefreshRequest, description = "Optional: without a body the refresh_token cookie is used (with the CSRF header)"),
    responses(
        (status = 200, description = "The successor pair (the same pair again for a retry within REFRESH_GRACE)", body = TokenAnswer),
        (status = 401, description = "invalid_refresh_token, or refresh_token_reused (the session is revoked)", body = ErrorBody),
        (status = 403, description = "csrf_failed: a cookie credential without the CSRF proof", body = ErrorBody),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    mode: Mode,
    headers: HeaderMap,
    MaybeJson(body): MaybeJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let from_body = match body {
        None => None,
        Some(parsed) => parsed?.refresh_token,
    };
    let (token, via_cookie) = match from_body {
        Some(token) => (token, false),
        None => (
            cookies::read(&headers, cookies::REFRESH)
                .filter(|t| !t.is_empty())
                .ok_or(AuthError::InvalidRefreshToken)?,
            true,
        ),
    };
    if via_cookie {
        let sid = state
            .auth
            .session_of_refresh_token(&token)
            .await?
            .ok_or(AuthError::InvalidRefreshToken)?;
        check_csrf(&headers, &state, sid)?;
    }
    let pair = state.auth.refresh(&token).await?;
    Ok(tokens_response(
        &state,
        StatusCode::OK,
        None,
        pair,
        mode.cookie() || via_cookie,
    ))
}

/// Logout's credential, in this order: a refresh token in the body, the
/// bearer access token (which may be expired), the refresh cookie, the
/// access cookie (cookie credentials pass the CSRF checks). A body that does
/// not parse is reported only after the credential was checked. The cookies
/// are cleared whatever happens.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    request_body(content = RefreshRequest, description = "Optional: the refresh token; else the bearer access token (it may be expired), else the cookies"),
    responses(
        (status = 204, description = "The session is revoked (idempotent); cookies are cleared"),
        (status = 401, description = "missing_token, invalid_token or invalid_refresh_token", body = ErrorBody),
        (status = 403, description = "csrf_failed: a cookie credential without the CSRF proof", body = ErrorBody),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    MaybeJson(body): MaybeJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let (body_refresh, body_error) = match body {
        None => (None, None),
        Some(Ok(parsed)) => (parsed.refresh_token, None),
        Some(Err(e)) => (None, Some(e)),
    };
    let bearer = match (
        &body_refresh,
        headers
            .get(header::AUTHORIZATION)
            .is_some_and(|v| !v.is_empty()),
    ) {
        (None, true) => Some(bearer_token(&headers)?.to_owned()),
        _ => None,
    };
    let cookie_refresh = cookies::read(&headers, cookies::REFRESH).filter(|t| !t.is_empty());
    let cookie_access = cookies::read(&headers, cookies::ACCESS).filter(|t| !t.is_empty());
    let (refresh_token, access_token) = match (body_refresh, bearer) {
        (Some(refresh), _) => (Some(refresh), None),
        (None, Some(access)) => (None, Some(access)),
        (None, None) => {
            let sid = match (&cookie_refresh, &cookie_access) {
                (Some(refresh), _) => state.auth.session_of_refresh_token(refresh).await?,
                (None, Some(access)) => state.auth.claims_for_logout(access)?.sid.parse().ok(),
                (None, None) => return Err(body_error.unwrap_or_else(ApiError::missing_token)),
            };
            check_csrf(&headers, &state, sid.ok_or(AuthError::InvalidRefreshToken)?)?;
            match cookie_refresh {
                Some(refresh) => (Some(refresh), None),
                None => (None, cookie_access),
            }
        }
    };
    let done = state
        .auth
        .logout(refresh_token.as_deref(), access_token.as_deref())
        .await;
    let mut response = match (done, body_error) {
        (Err(e), _) => ApiError::from(e).into_response(),
        (Ok(()), Some(e)) => e.into_response(),
        (Ok(()), None) => StatusCode::NO_CONTENT.into_response(),
    };
    for value in cookies::cleared(state.cookie_secure) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[utoipa::path(post, path = "/api/auth/logout-all", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Every session and access token of the user is revoked"),
        (status = 403, description = "csrf_failed", body = ErrorBody),
    ))]
pub async fn logout_all(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<StatusCode, ApiError> {
    state.auth.logout_all(&claims).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordChange {
    current_password: String,
    /// 8 to 128 characters, not a well-known password.
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
}

#[utoipa::path(post, path = "/api/auth/password", tag = "account", security(("bearer" = []), ("cookie" = [])),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; every other session is revoked"),
        (status = 400, description = "invalid_request or weak_password", body = ErrorBody),
        (status = 403, description = "invalid_credentials (wrong current password) or csrf_failed", body = ErrorBody),
        (status = 429, description = "rate_limited: too many wrong current passwords", body = ErrorBody),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    Client(client): Client,
    Authenticated(claims): Authenticated,
    AppJson(body): AppJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .change_password(&claims, &body.current_password, &body.new_password, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct EmailRequest {
    #[schema(
        max_length = 254,
        pattern = r"^\s*[^@\s\x00-\x1f\x7f-\x9f]{1,64}@[^@\s.\x00-\x1f\x7f-\x9f]+(\.[^@\s.\x00-\x1f\x7f-\x9f]+)+\s*$",
        example = "ada@example.com"
    )]
    email: String,
}

#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    /// The token from the mail link's fragment.
    token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ResetRequest {
    /// The token from the mail link's fragment.
    token: String,
    /// 8 to 128 characters, not a well-known password.
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct EmailChangeRequest {
    #[schema(
        max_length = 254,
        pattern = r"^\s*[^@\s\x00-\x1f\x7f-\x9f]{1,64}@[^@\s.\x00-\x1f\x7f-\x9f]+(\.[^@\s.\x00-\x1f\x7f-\x9f]+)+\s*$",
        example = "ada@example.com"
    )]
    new_email: String,
    /// The current password, again.
    password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordRequest {
    password: String,
}

/// Validates the address now (400), does the rest after answering: an
/// existing and an unknown account take the same time to answer.
fn accept_in_background<F>(
    email: &str,
    work: impl FnOnce(String) -> F,
) -> Result<StatusCode, ApiError>
where
    F: std::future::Future<Output = Result<(), crate::auth::AuthError>> + Send + 'static,
{
    let email =
        crate::auth::validate::normalize_email(email).map_err(crate::auth::AuthError::from)?;
    let job = work(email);
    tokio::spawn(async move {
        if let Err(e) = job.await {
            tracing::warn!(error = %e, "background mail flow failed");
        }
    });
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(post, path = "/api/auth/password/forgot", tag = "mail",
    request_body = EmailRequest,
    responses(
        (status = 202, description = "Accepted for any well-formed address, known or not; a reset link is mailed if the account exists"),
        (status = 429, description = "rate_limited, with Retry-After", body = ErrorBody),
    ))]
pub async fn forgot_password(
    State(state): State<AppState>,
    _budget: Throttle<Forgot>,
    AppJson(body): AppJson<EmailRequest>,
) -> Result<StatusCode, ApiError> {
    accept_in_background(&body.email, |email| async move {
        state.auth.forgot_password(&email).await
    })
}

#[utoipa::path(post, path = "/api/auth/email/resend", tag = "mail",
    request_body = EmailRequest,
    responses(
        (status = 202, description = "Accepted for any well-formed address; a verification link is mailed if the account exists and is unverified"),
        (status = 429, description = "rate_limited, with Retry-After", body = ErrorBody),
    ))]
pub async fn resend_verification(
    State(state): State<AppState>,
    _budget: Throttle<Resend>,
    AppJson(body): AppJson<EmailRequest>,
) -> Result<StatusCode, ApiError> {
    accept_in_background(&body.email, |email| async move {
        state.auth.resend_verification(&email).await
    })
}

#[utoipa::path(post, path = "/api/auth/password/reset", tag = "mail",
    request_body = ResetRequest,
    responses(
        (status = 204, description = "Password set; every session revoked, lock-outs lifted, e-mail verified"),
        (status = 400, description = "invalid_link, invalid_request or weak_password", body = ErrorBody),
    ))]
pub async fn reset_password(
    State(state): State<AppState>,
    AppJson(body): AppJson<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .reset_password(&body.token, &body.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/auth/email/verify", tag = "mail",
    request_body = TokenRequest,
    responses(
        (status = 204, description = "The e-mail address is verified"),
        (status = 400, description = "invalid_link", body = ErrorBody),
    ))]
pub async fn verify_email(
    State(state): State<AppState>,
    AppJson(body): AppJson<TokenRequest>,
) -> Result<StatusCode, ApiError> {
    state.auth.verify_email(&body.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/auth/email/confirm", tag = "mail",
    request_body = TokenRequest,
    responses(
        (status = 204, description = "The e-mail change is confirmed"),
        (status = 400, description = "invalid_link", body = ErrorBody),
        (status = 409, description = "user_exists: the new address was taken meanwhile", body = ErrorBody),
    ))]
pub async fn confirm_email(
    State(state): State<AppState>,
    AppJson(body): AppJson<TokenRequest>,
) -> Result<StatusCode, ApiError> {
    state.auth.confirm_email_change(&body.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/auth/email", tag = "account", security(("bearer" = []), ("cookie" = [])),
    request_body = EmailChangeRequest,
    responses(
        (status = 202, description = "A confirmation link goes to the new address, a notice to the old one"),
        (status = 403, description = "invalid_credentials (wrong password) or csrf_failed", body = ErrorBody),
        (status = 409, description = "user_exists", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    ))]
pub async fn change_email(
    State(state): State<AppState>,
    Client(client): Client,
    Authenticated(claims): Authenticated,
    AppJson(body): AppJson<EmailChangeRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .request_email_change(&claims, &body.new_email, &body.password, &client)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(delete, path = "/api/auth/me", tag = "account", security(("bearer" = []), ("cookie" = [])),
    request_body = PasswordRequest,
    responses(
        (status = 204, description = "The account and its sessions are gone"),
        (status = 403, description = "invalid_credentials (wrong password) or csrf_failed", body = ErrorBody),
        (status = 409, description = "conflict: the last administrator cannot delete itself", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    ))]
pub async fn delete_me(
    State(state): State<AppState>,
    Client(client): Client,
    Authenticated(claims): Authenticated,
    AppJson(body): AppJson<PasswordRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .delete_account(&claims, &body.password, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
