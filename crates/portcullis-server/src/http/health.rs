//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::store::Store;

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers within the request timeout.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({"status": "ready"})))
}
