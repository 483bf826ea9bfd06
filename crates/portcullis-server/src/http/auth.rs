//! `/api/auth/*`: register, login, me.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{AppJson, Authenticated, Client};
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
    tokens: TokenPair,
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
    Ok(no_store(StatusCode::OK, UserWithTokens { user, tokens }))
}

pub async fn me(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Response, ApiError> {
    let user = state.auth.current_user(&claims).await?;
    Ok(no_store(StatusCode::OK, user))
}
