//! `/api/auth/sessions`: a user's devices, and ending one.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::error::ApiError;
use super::extract::Authenticated;
use super::openapi::ErrorBody;
use crate::auth::sessions::SessionView;

#[utoipa::path(get, path = "/api/auth/sessions", tag = "sessions", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The user's live sessions, oldest first; `current` marks this one", body = Vec<SessionView>)))]
pub async fn list(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    Ok(Json(state.auth.sessions(&claims).await?))
}

#[utoipa::path(delete, path = "/api/auth/sessions/{id}", tag = "sessions", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "A session id from the list")),
    responses(
        (status = 204, description = "The session is revoked"),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found: no such session of this user", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.auth.delete_session(&claims, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
