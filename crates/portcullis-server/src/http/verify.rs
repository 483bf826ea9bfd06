//! `GET /api/auth/verify`: forward auth for gateways (nginx `auth_request`,
//! Traefik ForwardAuth, Envoy `ext_authz`). Answered from memory: the token's
//! signature, claims and the revocation set; no database read.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{bearer_token, check_csrf};
use super::{AppState, cookies};
use crate::auth::AuthError;

#[derive(Deserialize)]
pub struct VerifyQuery {
    role: Option<String>,
}

/// The method of the original request, as the gateway reports it.
fn original_method(headers: &HeaderMap) -> Option<Method> {
    ["x-forwarded-method", "x-original-method"]
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

pub async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<VerifyQuery>,
) -> Result<Response, ApiError> {
    let has_header = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| !v.is_empty());
    let claims = if has_header {
        state.auth.authenticate(bearer_token(&headers)?).await?
    } else {
        let token = cookies::read(&headers, cookies::ACCESS)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::missing_token)?;
        let claims = state.auth.authenticate(&token).await?;
        // A cookie rides along on cross-site requests: a state-changing
        // original request needs the CSRF proof too.
        if original_method(&headers).is_some_and(|m| !m.is_safe()) {
            let sid = claims
                .sid
                .parse()
                .map_err(|_| ApiError::from(AuthError::InvalidToken))?;
            check_csrf(&headers, &state, sid)?;
        }
        claims
    };
    if let Some(role) = query.role.as_deref()
        && !claims.has_role(role)
    {
        return Err(AuthError::Forbidden("this requires a role the user does not have").into());
    }
    let mut response = StatusCode::OK.into_response();
    let out = response.headers_mut();
    let value = |v: &str| HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static(""));
    out.insert("x-user-id", value(&claims.sub));
    out.insert("x-user-email", value(&claims.email));
    out.insert("x-user-roles", value(&claims.roles.join(",")));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
