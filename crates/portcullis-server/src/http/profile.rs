//! The classic design's protected routes, answered from the token alone.

use axum::Json;
use serde_json::{Value, json};

use super::extract::Authenticated;

pub async fn profile(Authenticated(claims): Authenticated) -> Json<Value> {
    Json(json!({
        "user_id": claims.sub,
        "email": claims.email,
        "message": "This is a protected route",
    }))
}

pub async fn data(Authenticated(claims): Authenticated) -> Json<Value> {
    Json(json!({ "message": format!("Hello, {}! Here is your protected data.", claims.name) }))
}
