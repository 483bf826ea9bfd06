//! The classic design's protected routes, answered from the token alone.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::Authenticated;

// Borrowed from the verified claims: nothing copied for the answer. (A
// doc comment here would become the schema's description in the OpenAPI
// document.)
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile<'a> {
    user_id: &'a str,
    email: &'a str,
    message: &'static str,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    message: String,
}

#[utoipa::path(get, path = "/api/profile", tag = "classic", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The Go design's protected route", body = Profile)))]
pub async fn profile(Authenticated(claims): Authenticated) -> Response {
    Json(Profile {
        user_id: &claims.sub,
        email: &claims.email,
        message: "This is a protected route",
    })
    .into_response()
}

#[utoipa::path(get, path = "/api/data", tag = "classic", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The Go design's other protected route", body = Message)))]
pub async fn data(Authenticated(claims): Authenticated) -> Json<Message> {
    Json(Message {
        message: format!("Hello, {}! Here is your protected data.", claims.name),
    })
}
