use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Why a request was turned away; answered in the server's own shape:
/// `{error, code}`, `WWW-Authenticate` on 401, `Retry-After` on 503.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("authentication required")]
    MissingToken,
    #[error("the access token is not valid")]
    InvalidToken,
    #[error("the access token has expired")]
    TokenExpired,
    #[error("the access token has been revoked")]
    TokenRevoked,
    #[error("this requires the role {0}")]
    Forbidden(&'static str),
    /// Keys or the revocation snapshot not loaded yet, or the revocations
    /// feed unreachable for longer than the allowed staleness: failing
    /// closed rather than accepting tokens that may have been revoked.
    #[error("token verification is unavailable, retry shortly")]
    Unavailable,
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken | Self::TokenExpired | Self::TokenRevoked => {
                StatusCode::UNAUTHORIZED
            }
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The contract's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidToken => "invalid_token",
            Self::TokenExpired => "token_expired",
            Self::TokenRevoked => "token_revoked",
            Self::Forbidden(_) => "forbidden",
            Self::Unavailable => "unavailable",
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.to_string(), "code": self.code()});
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            Self::MissingToken => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="portcullis""#),
                );
            }
            Self::InvalidToken | Self::TokenExpired | Self::TokenRevoked => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="portcullis", error="invalid_token""#),
                );
            }
            Self::Unavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::Forbidden(_) => {}
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
