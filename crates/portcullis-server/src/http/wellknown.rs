//! `/.well-known/*`: the public keys and discovery document verifiers use.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

use crate::auth::keys::JWKS_MAX_AGE;

/// The JWKS as `portcullis_token::JwkSet` serialises it (that crate stays
/// free of documentation dependencies, so its shape is restated here; the
/// contract test checks every answer against it).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Jwks {
    keys: Vec<PublicJwk>,
}

/// A public key: never private members, never an HMAC key.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PublicJwk {
    /// `OKP` (Ed25519), `EC` (P-256) or `RSA`.
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
    /// The RFC 7638 thumbprint.
    kid: String,
    /// `EdDSA`, `ES256` or `RS256`.
    alg: String,
    #[schema(rename = "use", example = "sig")]
    key_use: String,
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "verification",
    responses((status = 200, description = "The public keys that verify access tokens, with `Cache-Control: public, max-age=300`", body = Jwks)))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.auth.keys.ring().jwks()).into_response();
    if let Ok(value) = HeaderValue::try_from(format!("public, max-age={}", JWKS_MAX_AGE.as_secs()))
    {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

#[derive(Serialize, ToSchema)]
pub struct OpenIdConfiguration {
    /// `JWT_ISSUER`, byte for byte.
    issuer: String,
    jwks_uri: String,
    id_token_signing_alg_values_supported: Vec<&'static str>,
    token_endpoint: String,
}

#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "verification",
    responses((status = 200, description = "Discovery for verifiers: issuer and JWKS location", body = OpenIdConfiguration)))]
pub async fn openid_configuration(State(state): State<AppState>) -> Json<OpenIdConfiguration> {
    let algs: Vec<&'static str> = state
        .auth
        .keys
        .ring()
        .keys()
        .filter(|k| k.algorithm().is_asymmetric())
        .map(|k| k.algorithm().as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Json(OpenIdConfiguration {
        issuer: state.issuer.clone(),
        jwks_uri: format!("{}/.well-known/jwks.json", state.public_url),
        id_token_signing_alg_values_supported: algs,
        token_endpoint: format!("{}/api/auth/login", state.public_url),
    })
}
