//! `/api/admin/*`: accounts, their sessions, and signing keys.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use super::AppState;
use super::error::ApiError;
use super::extract::{AppJson, AppQuery, Authenticated, MaybeJson};
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

#[derive(Deserialize)]
pub struct UsersQuery {
    email: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

pub async fn users(
    State(state): State<AppState>,
    _admin: Admin,
    AppQuery(query): AppQuery<UsersQuery>,
) -> Result<Json<Value>, ApiError> {
    let (users, next) = state
        .auth
        .admin_users(query.email.as_deref(), query.limit, query.cursor.as_deref())
        .await?;
    Ok(Json(json!({"users": users, "next_cursor": next})))
}

#[derive(Deserialize)]
pub struct NewUser {
    email: String,
    name: String,
    roles: Option<Vec<String>>,
    password: Option<String>,
}

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

#[derive(Deserialize)]
pub struct Change {
    roles: Option<Vec<String>>,
    disabled: Option<bool>,
    locked: Option<bool>,
}

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

pub async fn delete_user(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.auth.admin_delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn password_reset(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.auth.admin_password_reset(&id).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn sessions(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    Ok(Json(state.auth.admin_sessions(&id).await?))
}

pub async fn end_session(
    State(state): State<AppState>,
    _admin: Admin,
    Path((id, sid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.auth.admin_end_session(&id, &sid).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn date(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub async fn keys(State(state): State<AppState>, _admin: Admin) -> Result<Json<Value>, ApiError> {
    let keys: Vec<Value> = state
        .auth
        .admin_keys()
        .await?
        .into_iter()
        .map(|k| {
            json!({
                "kid": k.kid,
                "alg": k.alg,
                "state": k.state,
                "created_at": date(k.created_at),
                "signing_from": date(k.signing_from),
                "retire_after": k.retire_after.map(date),
            })
        })
        .collect();
    Ok(Json(Value::Array(keys)))
}

#[derive(Deserialize)]
pub struct RotateQuery {
    now: Option<bool>,
}

pub async fn rotate_key(
    State(state): State<AppState>,
    _admin: Admin,
    AppQuery(query): AppQuery<RotateQuery>,
    MaybeJson(_empty): MaybeJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let record = state
        .auth
        .admin_rotate_key(query.now.unwrap_or(false))
        .await?;
    Ok(Json(
        json!({"kid": record.kid, "signing_from": date(record.signing_from)}),
    ))
}

pub async fn revoke_key(
    State(state): State<AppState>,
    _admin: Admin,
    Path(kid): Path<String>,
    MaybeJson(_empty): MaybeJson<Value>,
) -> Result<StatusCode, ApiError> {
    state.auth.admin_revoke_key(&kid).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct AuditQuery {
    user: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    since: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /api/admin/audit`: newest first, filtered by user, type and time.
pub async fn audit(
    State(state): State<AppState>,
    _admin: Admin,
    AppQuery(query): AppQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let since = query
        .since
        .as_deref()
        .map(|s| time::OffsetDateTime::parse(s, &Rfc3339))
        .transpose()
        .map_err(|_| ApiError::invalid_request("since must be an RFC 3339 time"))?;
    let before_id = query
        .cursor
        .as_deref()
        .map(str::parse::<i64>)
        .transpose()
        .map_err(|_| ApiError::invalid_request("unknown cursor"))?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
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
    Ok(Json(json!({"events": events, "next_cursor": next})))
}
