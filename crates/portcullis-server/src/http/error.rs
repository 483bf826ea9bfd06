//! The one mapping from errors to HTTP responses: status, `{error, code}`
//! body, and the `WWW-Authenticate` / `Retry-After` headers API.md asks for.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;

#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds, for 429 (until the limit lifts) and 503.
    retry_after: Option<u64>,
}

const CHALLENGE: &str = r#"Bearer realm="portcullis""#;
const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="portcullis", error="invalid_token""#;
/// Seconds a client should wait after a 503.
const RETRY_AFTER_UNAVAILABLE: &str = "1";

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// `429 rate_limited`, lifting after `wait`.
    pub fn rate_limited(message: impl Into<String>, wait: std::time::Duration) -> Self {
        Self {
            retry_after: Some(crate::auth::limits::retry_after(wait)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this method is not allowed on this resource",
        )
    }

    pub fn missing_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "authentication required",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "service temporarily unavailable, retry shortly",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let message = e.to_string();
        let (status, code) = match e {
            AuthError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            AuthError::WeakPassword(_) => (StatusCode::BAD_REQUEST, "weak_password"),
            AuthError::UserExists => (StatusCode::CONFLICT, "user_exists"),
            AuthError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            AuthError::WrongPassword => (StatusCode::FORBIDDEN, "invalid_credentials"),
            AuthError::MissingToken => (StatusCode::UNAUTHORIZED, "missing_token"),
            AuthError::InvalidRefreshToken => (StatusCode::UNAUTHORIZED, "invalid_refresh_token"),
            AuthError::RefreshTokenReused => (StatusCode::UNAUTHORIZED, "refresh_token_reused"),
            AuthError::NotFound => return Self::not_found(),
            AuthError::InvalidLink => (StatusCode::BAD_REQUEST, "invalid_link"),
            AuthError::EmailNotVerified => (StatusCode::FORBIDDEN, "email_not_verified"),
            AuthError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AuthError::RateLimited(wait) => return Self::rate_limited(message, wait),
            AuthError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AuthError::InvalidToken => (StatusCode::UNAUTHORIZED, "invalid_token"),
            AuthError::TokenExpired => (StatusCode::UNAUTHORIZED, "token_expired"),
            AuthError::TokenRevoked => (StatusCode::UNAUTHORIZED, "token_revoked"),
            AuthError::Unavailable => return Self::unavailable(),
        };
        Self::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(super::openapi::ErrorBody {
            error: self.message,
            code: self.code,
        });
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = match self.code {
                "invalid_token" | "token_expired" | "token_revoked" => INVALID_TOKEN_CHALLENGE,
                _ => CHALLENGE,
            };
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        } else if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_UNAVAILABLE),
            );
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
