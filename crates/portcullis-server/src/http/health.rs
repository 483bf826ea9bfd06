//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use crate::store::Store;

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Status {
    #[schema(example = "ok")]
    status: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Status)))]
pub async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// Ready when the database answers within the request timeout.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "The database (and Redis, if configured) answer", body = Status)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    state.auth.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::unavailable()
    })?;
    if let Some(bus) = &state.bus
        && !bus.ping().await
    {
        tracing::warn!("readiness check failed: Redis does not answer");
        return Err(ApiError::unavailable());
    }
    Ok(Json(Status { status: "ready" }))
}
