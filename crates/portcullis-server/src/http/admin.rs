//! `/api/admin/*`: accounts, their sessions, and signing keys.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::ApiError;
use super::extract::{AppJson, AppQuery, Authenticated, MaybeJson};
use super::openapi::ErrorBody;
use crate::auth::admin::{AccountChange, AdminUser};
use crate::auth::sessions::SessionView;

/// A request by a live administrator (checked against the database).
#[derive(Debug)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(claims) = Authenticated::from_request_parts(parts, state).await?;
        state.auth.require_admin(&claims).await?;
        Ok(Self)
    }
}

/// Roles as `validate::check_roles` accepts them: up to 16 distinct names
/// matching `[a-z][a-z0-9_-]{0,31}`, or null for "unchanged"/the default.
fn roles_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^[a-z][a-z0-9_-]{0,31}$"))
                .examples(["admin"]),
        )
        .max_items(Some(16))
        .unique_items(true)
        .build()
}

/// A page size as asked, clamped into what the store takes (each list
/// clamps further to its own maximum).
fn clamp_limit(limit: i64) -> u32 {
    u32::try_from(limit.clamp(1, 1000)).unwrap_or(1)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// A substring of the e-mail address (`%` and `_` match themselves).
    email: Option<String>,
    /// 1 to 200 (default 50); out of range is clamped.
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(format = Uuid)]
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UsersPage {
    users: Vec<AdminUser>,
    /// Present while there are more users.
    next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/admin/users", tag = "admin", security(("bearer" = []), ("cookie" = [])), params(UsersQuery),
    responses(
        (status = 200, description = "Users in creation order", body = UsersPage),
        (status = 400, description = "invalid_request: a malformed query or an unknown cursor", body = ErrorBody),
        (status = 403, description = "forbidden: not a live administrator (checked against the database); csrf_failed", body = ErrorBody),
    ))]
pub async fn users(
    State(state): State<AppState>,
    _admin: Admin,
    AppQuery(query): AppQuery<UsersQuery>,
) -> Result<Json<UsersPage>, ApiError> {
    let (users, next_cursor) = state
        .auth
        .admin_users(
            query.email.as_deref(),
            query.limit.map(clamp_limit),
            query.cursor.as_deref(),
        )
        .await?;
    Ok(Json(UsersPage { users, next_cursor }))
}

#[derive(Deserialize, ToSchema)]
pub struct NewUser {
    #[schema(
        max_length = 254,
        pattern = r"^\s*[^@\s\x00-\x1f\x7f-\x9f]{1,64}@[^@\s.\x00-\x1f\x7f-\x9f]+(\.[^@\s.\x00-\x1f\x7f-\x9f]+)+\s*$"
    )]
    email: String,
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: String,
    /// Default `["user"]`.
    #[schema(schema_with = roles_schema)]
    roles: Option<Vec<String>>,
    /// Without one the user gets a password-reset mail to set their own.
    #[schema(min_length = 8, max_length = 128)]
    password: Option<String>,
}

#[utoipa::path(post, path = "/api/admin/users", tag = "admin", security(("bearer" = []), ("cookie" = [])), request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = AdminUser),
        (status = 400, description = "invalid_request or weak_password", body = ErrorBody),
        (status = 403, description = "forbidden: not a live administrator (checked against the database); csrf_failed", body = ErrorBody),
        (status = 409, description = "user_exists", body = ErrorBody),
    ))]
pub async fn create_user(
    State(state): State<AppState>,
    _admin: Admin,
    AppJson(body): AppJson<NewUser>,
) -> Result<(StatusCode, Json<AdminUser>), ApiError> {
    let user = state
        .auth
        .admin_create(
            &body.email,
            &body.name,
            body.roles,
            body.password.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Only the members sent change.
#[derive(Deserialize, ToSchema)]
pub struct Change {
    /// Replaces the user's roles.
    #[schema(schema_with = roles_schema)]
    roles: Option<Vec<String>>,
    disabled: Option<bool>,
    locked: Option<bool>,
}

#[utoipa::path(patch, path = "/api/admin/users/{id}", tag = "admin", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "User id")), request_body = Change,
    responses(
        (status = 200, description = "The changed user; a role change or disabling revokes its access tokens", body = AdminUser),
        (status = 400, description = "invalid_request (e.g. `locked: true`: accounts lock by failed logins only)", body = ErrorBody),
        (status = 403, description = "forbidden: not a live administrator (checked against the database); csrf_failed", body = ErrorBody), (status = 404, description = "not_found: no such user", body = ErrorBody),
        (status = 409, description = "conflict: the last enabled administrator cannot be demoted or disabled", body = ErrorBody),
    ))]
pub async fn update_user(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    AppJson(body): AppJson<Change>,
) -> Result<Json<AdminUser>, ApiError> {
    if body.locked == Some(true) {
        return Err(ApiError::invalid_request(
            "accounts are locked by failed logins; only locked: false is accepted",
        ));
    }
    let change = AccountChange {
        roles: body.roles,
        disabled: body.disabled,
        unlock: body.locked == Some(false),
    };
    Ok(Json(state.auth.admin_update(&id, change).await?))
}

#[utoipa::path(delete, path = "/api/admin/users/{id}", tag = "admin", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Deleted; its tokens stop at once"),
        (status = 403, description = "forbidden: not a live administrator (checked against the database); csrf_failed", body = ErrorBody), (status = 404, description = "not_found: no such user", body = ErrorBody),
        (status = 409, description = "conflict: the last enabled administrator", body = ErrorBody),
    ))]
pub async fn delete_user(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.auth.admin_delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/admin/users/{id}/password-reset", tag = "admin", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 202, description = "A reset link is mailed to the user"),
        (status = 403, description = "forbidden: not a live administrator (checked against the database); csrf_failed", body = ErrorBody), (status = 404, description = "not_found: no such user", body = ErrorBody),
        (status = 429, description = "rate_limited: the recipient's mail budget", body = ErrorBody),
    ))]
pub async fn password_reset(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.auth.admin_password_reset(&id).await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(get, path = "/api/admin/users/{id}/sessions", tag = "admin", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user's live sessions", body = Vec<SessionView>),
        (status = 403, description = "forbidden: not a live administrator (checked against the database); csrf_failed", body = ErrorBody), (status = 404, description = "not_found: no such user", body = ErrorBody),
    ))]
pub async fn sessions(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    Ok(Json(state.auth.admin_sessions(&id).await?))
}

#[utoipa::path(delete, path = "/api/admin/users/{id}/sessions/{sid}", tag = "admin", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "User id"), ("sid" = String, Path, description = "Session id")),
    responses(
        (status = 204, description = "The session is revoked"),
        (status = 403, description = "forbidden: not a live administrator (checked against the database); csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found: no such user or session", body = ErrorBody),
    ))]
pub async fn end_session(
    State(state): State<AppState>,
    _admin: Admin,
    Path((id, sid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.auth.admin_end_session(&id, &sid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A signing key as operators see it.
#[derive(Serialize, ToSchema)]
pub struct KeyView {
    kid: String,
    alg: String,
    /// `current`, `next` (published, not signing yet) or `retiring`
    /// (verifying its last tokens).
    state: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    signing_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    retire_after: Option<OffsetDateTime>,
}

#[utoipa::path(get, path = "/api/admin/keys", tag = "admin", security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The live signing keys", body = Vec<KeyView>),
        (status = 403, description = "forbidden: not a live administrator (checked against the database); csrf_failed", body = ErrorBody),
        (status = 409, description = "conflict: keys come from JWT_SECRET (HS256)", body = ErrorBody),
    ))]
pub async fn keys(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    let keys = state
        .auth
        .admin_keys()
        .await?
        .into_iter()
        .map(|k| KeyView {
            kid: k.kid,
            alg: k.alg,
            state: k.state,
            created_at: k.created_at,
            signing_from: k.signing_from,
            retire_after: k.retire_after,
        })
        .collect();
    Ok(Json(keys))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RotateQuery {
    /// Sign with the new key at once instead of after the JWKS cache
    /// lifetime (tokens verifiers cannot check yet may be refused).
    now: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct RotatedKey {
    kid: String,
    #[serde(with = "time::serde::rfc3339")]
    signing_from: OffsetDateTime,
}

#[utoipa::path(post, path = "/api/admin/keys/rotate", tag = "admin", security(("bearer" = []), ("cookie" = [])), params(RotateQuery),
    responses(
        (status = 200, description = "The new key, published now, signing from `signing_from`", body = RotatedKey),
        (status = 400, description = "invalid_request: a malformed query", body = ErrorBody),
        (status = 403, description = "forbidden: not a live administrator (checked against the database); csrf_failed", body = ErrorBody),
        (status = 409, description = "conflict: keys come from JWT_SECRET (HS256)", body = ErrorBody),
    ))]
pub async fn rotate_key(
    State(state): State<AppState>,
    _admin: Admin,
    AppQuery(query): AppQuery<RotateQuery>,
    MaybeJson(_empty): MaybeJson<Value>,
) -> Result<Json<RotatedKey>, ApiError> {
    let record = state
        .auth
        .admin_rotate_key(query.now.unwrap_or(false))
        .await?;
    Ok(Json(RotatedKey {
        kid: record.kid,
        signing_from: record.signing_from,
    }))
}

#[utoipa::path(post, path = "/api/admin/keys/{kid}/revoke", tag = "admin", security(("bearer" = []), ("cookie" = [])),
    params(("kid" = String, Path, description = "Key id")),
    responses(
        (status = 204, description = "Retired at once; its tokens are refused everywhere"),
        (status = 403, description = "forbidden: not a live administrator (checked against the database); csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found: no such key", body = ErrorBody),
        (status = 409, description = "conflict: the current signing key, or JWT_SECRET keys", body = ErrorBody),
    ))]
pub async fn revoke_key(
    State(state): State<AppState>,
    _admin: Admin,
    Path(kid): Path<String>,
    MaybeJson(_empty): MaybeJson<Value>,
) -> Result<StatusCode, ApiError> {
    state.auth.admin_revoke_key(&kid).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// A user id.
    user: Option<String>,
    /// An event type, e.g. `login_failed`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    kind: Option<String>,
    /// Events at or after this time (RFC 3339).
    #[param(format = DateTime)]
    since: Option<String>,
    /// 1 to 1000 (default 100); out of range is clamped.
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^[0-9]{1,18}$")]
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    events: Vec<crate::audit::AuditEvent>,
    next_cursor: Option<String>,
}

/// `GET /api/admin/audit`: newest first, filtered by user, type and time.
#[utoipa::path(get, path = "/api/admin/audit", tag = "admin", security(("bearer" = []), ("cookie" = [])), params(AuditQuery),
    responses(
        (status = 200, description = "Security events, newest first", body = AuditPage),
        (status = 400, description = "invalid_request: a malformed query, `since` not RFC 3339, an unknown cursor", body = ErrorBody),
        (status = 403, description = "forbidden: not a live administrator (checked against the database); csrf_failed", body = ErrorBody),
    ))]
pub async fn audit(
    State(state): State<AppState>,
    _admin: Admin,
    AppQuery(query): AppQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let since = query
        .since
        .as_deref()
        .map(|s| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339))
        .transpose()
        .map_err(|_| ApiError::invalid_request("since must be an RFC 3339 time"))?;
    let before_id = query
        .cursor
        .as_deref()
        .map(str::parse::<i64>)
        .transpose()
        .map_err(|_| ApiError::invalid_request("unknown cursor"))?;
    let limit = query.limit.map_or(100, clamp_limit).clamp(1, 1000);
    let filter = crate::store::AuditFilter {
        user_id: query.user,
        kind: query.kind,
        since,
        before_id,
    };
    let mut events = crate::store::Store::audit_page(&state.auth.store, &filter, limit + 1)
        .await
        .map_err(crate::auth::AuthError::from)?;
    let next = (events.len() > limit as usize).then(|| events[limit as usize - 1].id.to_string());
    events.truncate(limit as usize);
    Ok(Json(AuditPage {
        events,
        next_cursor: next,
    }))
}
