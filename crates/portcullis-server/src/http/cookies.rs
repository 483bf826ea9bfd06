//! Cookie mode (API.md): `access_token` (Path=/) and `refresh_token`
//! (Path=/api/auth), both HttpOnly, Secure and SameSite=Strict, and a
//! readable `csrf_token` (Path=/). Bodies then carry no token strings.

use axum::http::{HeaderMap, HeaderValue, header};
use axum_extra::extract::cookie::{Cookie, SameSite};

use crate::auth::TokenPair;

pub const ACCESS: &str = "access_token";
pub const REFRESH: &str = "refresh_token";
pub const CSRF: &str = "csrf_token";

/// The value of cookie `name` in the request.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| Cookie::parse(pair.trim().to_owned()).ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

fn cookie(
    name: &'static str,
    value: String,
    path: &'static str,
    http_only: bool,
    secure: bool,
    max_age: time::Duration,
) -> HeaderValue {
    let cookie = Cookie::build((name, value))
        .path(path)
        .http_only(http_only)
        .secure(secure)
        .same_site(SameSite::Strict)
        .max_age(max_age)
        .build();
    // Cookie values here are base64url, JWTs or empty: always valid headers.
    HeaderValue::try_from(cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Set-Cookie values for a new pair. Both token cookies live as long as a
/// refresh token, so an expired access token reads `token_expired` rather
/// than vanishing.
pub fn for_pair(
    pair: &TokenPair,
    csrf: String,
    secure: bool,
    lifetime: std::time::Duration,
) -> [HeaderValue; 3] {
    let max_age = time::Duration::try_from(lifetime).unwrap_or(time::Duration::WEEK);
    [
        cookie(
            ACCESS,
            pair.access_token.clone(),
            "/",
            true,
            secure,
            max_age,
        ),
        cookie(
            REFRESH,
            pair.refresh_token.clone(),
            "/api/auth",
            true,
            secure,
            max_age,
        ),
        cookie(CSRF, csrf, "/", false, secure, max_age),
    ]
}

/// Set-Cookie values that remove all three (same paths, or browsers keep
/// them).
pub fn cleared(secure: bool) -> [HeaderValue; 3] {
    [
        cookie(
            ACCESS,
            String::new(),
            "/",
            true,
            secure,
            time::Duration::ZERO,
        ),
        cookie(
            REFRESH,
            String::new(),
            "/api/auth",
            true,
            secure,
            time::Duration::ZERO,
        ),
        cookie(
            CSRF,
            String::new(),
            "/",
            false,
            secure,
            time::Duration::ZERO,
        ),
    ]
}
