//! `/.well-known/*`: the public keys and discovery document verifiers use.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;

use crate::auth::keys::JWKS_MAX_AGE;

pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.auth.keys.ring().jwks()).into_response();
    if let Ok(value) = HeaderValue::try_from(format!("public, max-age={}", JWKS_MAX_AGE.as_secs()))
    {
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
