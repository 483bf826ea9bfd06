//! The contract's JSON shapes (API.md), as the server sends them.

use serde::{Deserialize, Serialize};

/// A user as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct User {
    /// A UUID.
    pub id: String,
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    pub email_verified: bool,
    /// RFC 3339.
    pub created_at: String,
}

/// An access token and the refresh token that replaces it.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct TokenPair {
    pub access_token: String,
    /// Good once: each refresh answers with its successor.
    pub refresh_token: String,
    pub token_type: String,
    /// The access token's lifetime in seconds.
    pub expires_in: u64,
}

impl std::fmt::Debug for TokenPair {
    /// Tokens are credentials: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// What register and login answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Session {
    pub user: User,
    pub tokens: TokenPair,
}

/// One of the user's devices.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    pub device_name: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: String,
    pub last_used_at: String,
    /// The session of the token that asked.
    pub current: bool,
}

/// `GET /api/profile`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Profile {
    pub user_id: String,
    pub email: String,
    pub message: String,
}

/// `GET /api/data`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Message {
    pub message: String,
}

/// `GET /.well-known/jwks.json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// A public key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub kid: Option<String>,
    pub alg: Option<String>,
    #[serde(rename = "use")]
    pub key_use: Option<String>,
    pub crv: Option<String>,
    pub x: Option<String>,
    pub y: Option<String>,
    pub n: Option<String>,
    pub e: Option<String>,
}

/// `GET /.well-known/openid-configuration`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OpenIdConfiguration {
    pub issuer: String,
    pub jwks_uri: String,
}
