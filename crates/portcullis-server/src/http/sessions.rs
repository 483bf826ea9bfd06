//! `/api/auth/sessions`: a user's devices, and ending one.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::error::ApiError;
use super::extract::Authenticated;
use crate::auth::sessions::SessionView;

pub async fn list(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    Ok(Json(state.auth.sessions(&claims).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.auth.delete_session(&claims, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
