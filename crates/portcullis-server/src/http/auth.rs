//! `/api/auth/*`: register, login, me.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{
    AppJson, Authenticated, Client, Forgot, Login, MaybeJson, Resend, Signup, Throttle,
    bearer_token,
};
use crate::auth::{LoginInput, RegisterInput, TokenPair, User};

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
    AppJson(body): AppJson<RegisterRequest>,
) -> Result<Response, ApiError> {
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
    Ok(no_store(
        StatusCode::CREATED,
        UserWithTokens { user, tokens },
    ))
}

pub async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    _budget: Throttle<Login>,
    AppJson(body): AppJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let (user, tokens) = state
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
    Ok(no_store(
        StatusCode::OK,
        UserWithTokens {
            user,
            tokens: Some(tokens),
        },
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

pub async fn refresh(
    State(state): State<AppState>,
    MaybeJson(body): MaybeJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let token = match body {
        None => None,
        Some(parsed) => parsed?.refresh_token,
    };
    let token = token.ok_or(crate::auth::AuthError::InvalidRefreshToken)?;
    let tokens = state.auth.refresh(&token).await?;
    Ok(no_store(StatusCode::OK, tokens))
}

/// Logout's credential: a refresh token in the body, else the access token
/// (which may be expired). A body that does not parse is reported only after
/// the credential was checked.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    MaybeJson(body): MaybeJson<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    let (refresh_token, body_error) = match body {
        None => (None, None),
        Some(Ok(parsed)) => (parsed.refresh_token, None),
        Some(Err(e)) => (None, Some(e)),
    };
    let access_token = match (&refresh_token, headers.contains_key(header::AUTHORIZATION)) {
        (None, true) => Some(bearer_token(&headers)?),
        _ => None,
    };
    if refresh_token.is_none() && access_token.is_none() {
        return Err(body_error.unwrap_or_else(ApiError::missing_token));
    }
    if let (Some(e), Some(token)) = (body_error, access_token) {
        state
            .auth
            .logout(None, Some(token))
            .await
            .map_err(ApiError::from)?;
        return Err(e);
    }
    state
        .auth
        .logout(refresh_token.as_deref(), access_token)
        .await?;
    Ok(StatusCode::NO_CONTENT)
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
