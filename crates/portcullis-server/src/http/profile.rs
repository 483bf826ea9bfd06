//! The classic design's protected routes, answered from the token alone.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::Authenticated;

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    user_id: String,
    email: String,
    message: &'static str,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    message: String,
}

#[utoipa::path(get, path = "/api/profile", tag = "classic", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The Go design's protected route", body = Profile)))]
pub async fn profile(Authenticated(claims): Authenticated) -> Json<Profile> {
    Json(Profile {
        user_id: claims.sub.clone(),
        email: claims.email.clone(),
        message: "This is a protected route",
    })
}

#[utoipa::path(get, path = "/api/data", tag = "classic", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The Go design's other protected route", body = Message)))]
pub async fn data(Authenticated(claims): Authenticated) -> Json<Message> {
    Json(Message {
        message: format!("Hello, {}! Here is your protected data.", claims.name),
    })
}
