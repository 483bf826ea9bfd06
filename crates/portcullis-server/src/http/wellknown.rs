//! `/.well-known/*`: the public keys and discovery document verifiers use.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;

/// Verifiers may cache the key set this long; key rotation publishes a new
/// key at least this long before it signs.
pub const JWKS_MAX_AGE_SECS: u64 = 300;

pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.auth.keys.ring().jwks()).into_response();
    if let Ok(value) = HeaderValue::try_from(format!("public, max-age={JWKS_MAX_AGE_SECS}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

pub async fn openid_configuration(State(state): State<AppState>) -> Json<serde_json::Value> {
    let algs: Vec<&str> = state
        .auth
        .keys
        .ring()
        .keys()
        .filter(|k| k.algorithm().is_asymmetric())
        .map(|k| k.algorithm().as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Json(json!({
        "issuer": state.issuer,
        "jwks_uri": format!("{}/.well-known/jwks.json", state.public_url),
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint": format!("{}/api/auth/login", state.public_url),
    }))
}
