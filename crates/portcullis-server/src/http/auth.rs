//! `/api/auth/*`: register, login, me.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{
    AppJson, Authenticated, Client, Forgot, Login, MaybeJson, Resend, Signup, Throttle,
    bearer_token, check_csrf, check_origin,
};
use super::{AppState, cookies};
use crate::auth::{AuthError, LoginInput, RegisterInput, TokenPair, User};

#[derive(Deserialize)]
pub struct RegisterRequest {
    email: String,
    password: String,
    name: String,
}

#[derive(Deserialize)]
pub struct LoginRequest {
    email: String,
    password: String,
    device_name: Option<String>,
}

#[derive(serde::Serialize)]
struct UserWithTokens {
    user: User,
    /// Absent when registration waits for e-mail verification.
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<TokenPair>,
}

/// `?mode=cookie`, read leniently: any other query is simply not cookie
/// mode (a malformed query must not turn into a non-JSON rejection).
#[derive(Debug)]
pub struct Mode(bool);

impl Mode {
    fn cookie(&self) -> bool {
        self.0
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Mode {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        Ok(Self(query.split('&').any(|pair| pair == "mode=cookie")))
    }
}

/// The cookie-mode body: no token strings.
#[derive(serde::Serialize)]
struct CookieBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a User>,
    token_type: &'static str,
    expires_in: u64,
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
        return match user {
            Some(user) => no_store(
                status,
                UserWithTokens {
                    user: user.clone(),
                    tokens: Some(pair),
                },
            ),
            None => no_store(status, pair),
        };
    }
    let body = CookieBody {
        user,
        token_type: pair.token_type,
        expires_in: pair.expires_in,
    };
    let mut response = no_store(status, body);
    let csrf = state.auth.csrf.issue(pair.session_id);
    for value in cookies::for_pair(&pair, csrf, state.cookie_secure, state.cookie_lifetime) {
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

pub async fn me(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Response, ApiError> {
    let user = state.auth.current_user(&claims).await?;
    Ok(no_store(StatusCode::OK, user))
}

/// `{refresh_token}`; a missing field counts as no token (401, not 400).
#[derive(Deserialize)]
pub struct RefreshRequest {
    refresh_token: Option<String>,
}

/// The refresh token from the body, else from the cookie; a cookie
/// credential needs the CSRF checks and is answered with cookies only (its
/// tokens never reach page scripts).
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

pub async fn logout_all(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<StatusCode, ApiError> {
    state.auth.logout_all(&claims).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

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

#[derive(Deserialize)]
pub struct EmailRequest {
    email: String,
}

#[derive(Deserialize)]
pub struct TokenRequest {
    token: String,
}

#[derive(Deserialize)]
pub struct ResetRequest {
    token: String,
    new_password: String,
}

#[derive(Deserialize)]
pub struct EmailChangeRequest {
    new_email: String,
    password: String,
}

#[derive(Deserialize)]
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

pub async fn forgot_password(
    State(state): State<AppState>,
    _budget: Throttle<Forgot>,
    AppJson(body): AppJson<EmailRequest>,
) -> Result<StatusCode, ApiError> {
    accept_in_background(&body.email, |email| async move {
        state.auth.forgot_password(&email).await
    })
}

pub async fn resend_verification(
    State(state): State<AppState>,
    _budget: Throttle<Resend>,
    AppJson(body): AppJson<EmailRequest>,
) -> Result<StatusCode, ApiError> {
    accept_in_background(&body.email, |email| async move {
        state.auth.resend_verification(&email).await
    })
}

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

pub async fn verify_email(
    State(state): State<AppState>,
    AppJson(body): AppJson<TokenRequest>,
) -> Result<StatusCode, ApiError> {
    state.auth.verify_email(&body.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn confirm_email(
    State(state): State<AppState>,
    AppJson(body): AppJson<TokenRequest>,
) -> Result<StatusCode, ApiError> {
    state.auth.confirm_email_change(&body.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

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
