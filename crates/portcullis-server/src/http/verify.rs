//! `GET /api/auth/verify`: forward auth for gateways (nginx `auth_request`,
//! Traefik ForwardAuth, Envoy `ext_authz`). Answered from memory: the token's
//! signature, claims and the revocation set; no database read.
//!
//! Envoy's HTTP `ext_authz` asks with the original request's method, at the
//! configured prefix followed by the original path and query; so any method
//! is accepted, `/api/auth/verify/{*path}` too, and there the query is the
//! original request's, never read as ours.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{AppQuery, bearer_token, check_csrf};
use super::{AppState, cookies};
use crate::auth::AuthError;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// Answer 403 unless the user has this role.
    role: Option<String>,
}

/// The method of the original request: as the gateway reports it, else the
/// method this request came with (Envoy passes the original one through).
/// A header naming no valid method counts as unsafe.
fn original_method(headers: &HeaderMap, own: Method) -> Method {
    ["x-forwarded-method", "x-original-method"]
        .iter()
        .find_map(|name| headers.get(*name))
        .map_or(Some(own), |v| v.to_str().ok().and_then(|v| v.parse().ok()))
        .unwrap_or(Method::POST)
}

/// `/api/auth/verify[?role=R]`, any method.
#[utoipa::path(method(get, head, post, put, patch, delete), path = "/api/auth/verify", tag = "verification",
    security(("bearer" = []), ("cookie" = [])), params(VerifyQuery,
        ("X-Forwarded-Method" = Option<String>, Header, description = "The original request's method (Traefik); unsafe methods need the CSRF header with a cookie credential"),
        ("X-Original-Method" = Option<String>, Header, description = "The same, as the documented nginx configuration sends it"),
    ),
    responses(
        (status = 200, description = "The caller may pass. Answered from memory, `Cache-Control: no-store`. Any method is answered, also below `/api/auth/verify/` (Envoy's ext_authz asks with the original method and path; there the query is not read).",
            headers(
                ("X-User-Id" = String, description = "The user's id"),
                ("X-User-Email" = String, description = "The user's e-mail address"),
                ("X-User-Roles" = String, description = "Comma-separated roles"),
            )),
        (status = 400, description = "invalid_request: a malformed query", body = super::openapi::ErrorBody),
        (status = 403, description = "forbidden: the `role` is missing; csrf_failed: a cookie credential on an unsafe original method without the CSRF header", body = super::openapi::ErrorBody),
    ))]
pub async fn verify(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    AppQuery(query): AppQuery<VerifyQuery>,
) -> Result<Response, ApiError> {
    answer(
        &state,
        &headers,
        original_method(&headers, method),
        query.role.as_deref(),
    )
    .await
}

/// `/api/auth/verify/{*path}`, any method: Envoy's shape.
pub async fn verify_prefixed(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    answer(&state, &headers, original_method(&headers, method), None).await
}

async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    original: Method,
    role: Option<&str>,
) -> Result<Response, ApiError> {
    let has_header = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| !v.is_empty());
    let claims = if has_header {
        state.auth.authenticate(bearer_token(headers)?).await?
    } else {
        let token = cookies::read(headers, cookies::ACCESS)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::missing_token)?;
        let claims = state.auth.authenticate(&token).await?;
        // A cookie rides along on cross-site requests: a state-changing
        // original request needs the CSRF proof too.
        if !original.is_safe() {
            let sid = claims
                .sid
                .parse()
                .map_err(|_| ApiError::from(AuthError::InvalidToken))?;
            check_csrf(headers, state, sid)?;
        }
        claims
    };
    if let Some(role) = role
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
