//! Request extractors: JSON bodies on the contract's terms, bearer
//! authentication, and the client's address.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use portcullis_token::Claims;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::{AppState, cookies};
use crate::auth::{AuthError, ClientContext};

/// Bodies above this are refused with 413 (API.md).
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON body: `application/json` only (415 otherwise), at most 64 KiB
/// (413), and parsed into `T` (400 for malformed JSON or wrong types).
/// Unknown fields are ignored, so they can never be applied.
#[derive(Debug)]
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    /// Checks in the contract's order: size (413), media type (415), then
    /// the JSON itself (400).
    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(req.headers());
        let bytes = read_limited(req).await?;
        if !json {
            return Err(unsupported_media_type());
        }
        parse(&bytes).map(AppJson)
    }
}

/// When `expected` is set, the request must carry it as its bearer token
/// (`REVOCATIONS_TOKEN`, `METRICS_TOKEN`); compared in constant time.
pub fn require_shared_secret(
    headers: &HeaderMap,
    expected: Option<&secrecy::SecretString>,
) -> Result<(), ApiError> {
    use secrecy::ExposeSecret;
    let Some(expected) = expected else {
        return Ok(());
    };
    let given = bearer_token(headers)?;
    aws_lc_rs::constant_time::verify_slices_are_equal(
        given.as_bytes(),
        expected.expose_secret().as_bytes(),
    )
    .map_err(|_| AuthError::InvalidToken.into())
}

/// A query string parsed into `T`; a malformed one is `400
/// invalid_request` in the contract's JSON shape, not axum's plain text.
#[derive(Debug)]
pub struct AppQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|e| ApiError::invalid_request(format!("malformed query: {}", e.body_text())))
    }
}

/// An optional JSON body, for routes where the body may be empty (logout,
/// refresh). Size (413) and media type of a non-empty body (415) are
/// checked on extraction; the parse result is kept so the handler can put
/// authentication (401) before body validation (400), as API.md orders them.
#[derive(Debug)]
pub struct MaybeJson<T>(pub Option<Result<T, ApiError>>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for MaybeJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(req.headers());
        let bytes = read_limited(req).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        if !json {
            return Err(unsupported_media_type());
        }
        Ok(Self(Some(parse(&bytes))))
    }
}

/// How much of an oversized body is still read (and dropped) before the 413
/// goes out: closing a connection with unread data makes the kernel send a
/// reset that can destroy the answer before the client reads it.
const DRAIN_LIMIT: usize = 4 * 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads the body, at most [`BODY_LIMIT`] bytes (413 beyond).
async fn read_limited(req: Request) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut too_large = declared.is_some_and(|len| len > BODY_LIMIT as u64);
    let mut body = req.into_body();
    let mut buffer = Vec::new();
    let mut seen = 0usize;
    let deadline = tokio::time::Instant::now() + DRAIN_TIME;
    loop {
        let next = if too_large {
            match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(next) => next,
                Err(_) => break,
            }
        } else {
            body.frame().await
        };
        let Some(frame) = next else { break };
        let Ok(data) = frame
            .map_err(|_| ApiError::invalid_request("the request body could not be read"))?
            .into_data()
        else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > BODY_LIMIT {
            too_large = true;
            buffer = Vec::new();
        }
        if too_large {
            if seen > DRAIN_LIMIT {
                break;
            }
        } else {
            buffer.extend_from_slice(&data);
        }
    }
    if too_large {
        return Err(payload_too_large());
    }
    Ok(Bytes::from(buffer))
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "request bodies must be application/json",
    )
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid_request(json_error_message(&e)))
}

/// `application/json`, with parameters such as `; charset=utf-8` allowed.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Says what is wrong without echoing the input (it may hold a password).
fn json_error_message(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            // serde's data errors name the field and the expected type
            // ("missing field `email`", "invalid type: integer, expected a
            // string"); only the value itself could carry input, and serde
            // quotes values only for strings, which are cut off here.
            let text = e.to_string();
            let text = text.split(" at line ").next().unwrap_or(&text);
            match text.split_once(": \"") {
                Some((head, _)) => format!("invalid request body: {head}"),
                None => format!("invalid request body: {text}"),
            }
        }
        Category::Syntax | Category::Eof | Category::Io => {
            "the request body is not valid JSON".into()
        }
    }
}

/// A request authenticated by a valid bearer access token.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<Claims>);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    /// A `Bearer` header wins; else the `access_token` cookie, and then every
    /// state-changing method must pass the CSRF checks.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        precheck_body(&parts.headers)?;
        let has_header = parts
            .headers
            .get(header::AUTHORIZATION)
            .is_some_and(|v| !v.is_empty());
        if has_header {
            let token = bearer_token(&parts.headers)?;
            return Ok(Self(state.auth.authenticate(token).await?));
        }
        let token = cookies::read(&parts.headers, cookies::ACCESS)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::missing_token)?;
        let claims = state.auth.authenticate(&token).await?;
        if !parts.method.is_safe() {
            let sid = claims
                .sid
                .parse()
                .map_err(|_| ApiError::from(AuthError::InvalidToken))?;
            check_csrf(&parts.headers, state, sid)?;
        }
        Ok(Self(claims))
    }
}

/// API.md puts 413 and 415 before authentication: what the headers already
/// tell about the body is checked here, before the credential (the body
/// extractor checks again while reading, for bodies without a length).
fn precheck_body(headers: &HeaderMap) -> Result<(), ApiError> {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|l| l > BODY_LIMIT as u64) {
        return Err(payload_too_large());
    }
    let has_body = length.is_some_and(|l| l > 0) || headers.contains_key(header::TRANSFER_ENCODING);
    if has_body && !is_json(headers) {
        return Err(unsupported_media_type());
    }
    Ok(())
}

fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "request bodies must be at most 64 KiB",
    )
}

fn csrf_failed() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf_failed",
        "cross-site request refused: send X-CSRF-Token from the csrf_token cookie, from an allowed origin",
    )
}

/// `Origin` / `Sec-Fetch-Site`, when sent, must name the server itself, an
/// origin of `CORS_ALLOWED_ORIGINS`, or `same-origin` / `none`.
pub fn check_origin(headers: &HeaderMap, state: &AppState) -> Result<(), ApiError> {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let allowed = |o: &str| state.allowed_origins.iter().any(|a| a == o);
    if origin.is_some_and(|o| !allowed(o)) {
        return Err(csrf_failed());
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        None | Some("same-origin" | "none") => Ok(()),
        Some(_) if origin.is_some_and(allowed) => Ok(()),
        Some(_) => Err(csrf_failed()),
    }
}

/// The double-submit check of cookie mode: `X-CSRF-Token` equals the
/// `csrf_token` cookie and was issued for this session, from an allowed
/// origin.
pub fn check_csrf(headers: &HeaderMap, state: &AppState, sid: uuid::Uuid) -> Result<(), ApiError> {
    check_origin(headers, state)?;
    let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
    let cookie = cookies::read(headers, cookies::CSRF);
    match (sent, cookie) {
        (Some(sent), Some(cookie)) if sent == cookie && state.auth.csrf.check(sid, sent) => Ok(()),
        _ => Err(csrf_failed()),
    }
}

/// The token of `Authorization: Bearer <token>`. No header, or an empty
/// one, is `missing_token`; anything else unusable is `invalid_token`.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next().filter(|v| !v.is_empty()) else {
        return Err(ApiError::missing_token());
    };
    let invalid = || ApiError::from(crate::auth::AuthError::InvalidToken);
    if values.next().is_some() {
        return Err(invalid());
    }
    // UTF-8 rather than `to_str`'s visible-ASCII check, which walks a
    // JWT's few hundred bytes one at a time on every request: anything
    // non-ASCII that passes here matches no cached token and fails
    // verification.
    let text = std::str::from_utf8(value.as_bytes()).map_err(|_| invalid())?;
    let (scheme, token) = text.split_once(' ').ok_or_else(invalid)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(invalid());
    }
    Ok(token)
}

/// The client's address (behind trusted proxies, API.md) and user agent,
/// for rate limits, sessions and audit events.
#[derive(Debug, Clone)]
pub struct Client(pub ClientContext);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| {
                let forwarded: Vec<&str> = parts
                    .headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                crate::net::client_address(peer.ip(), &forwarded, &state.trusted_proxies)
            });
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Self(ClientContext {
            ip: address.map(|a| a.to_string()),
            rate_key: address.map_or_else(|| "unknown".to_owned(), crate::net::rate_key),
            user_agent,
        }))
    }
}

/// A per-address budget, taken before the body is read (429 comes before
/// 413/415 in API.md's order): `Throttle<Login>`, `Throttle<Signup>`.
#[derive(Debug)]
pub struct Throttle<B>(std::marker::PhantomData<B>);

/// Which budget a [`Throttle`] draws from.
pub trait Budget {
    const BUCKET: crate::auth::Bucket;
}

#[derive(Debug)]
pub struct Login;

impl Budget for Login {
    const BUCKET: crate::auth::Bucket = crate::auth::Bucket::Login;
}

#[derive(Debug)]
pub struct Signup;

impl Budget for Signup {
    const BUCKET: crate::auth::Bucket = crate::auth::Bucket::Signup;
}

#[derive(Debug)]
pub struct Forgot;

impl Budget for Forgot {
    const BUCKET: crate::auth::Bucket = crate::auth::Bucket::Forgot;
}

#[derive(Debug)]
pub struct Resend;

impl Budget for Resend {
    const BUCKET: crate::auth::Bucket = crate::auth::Bucket::Resend;
}

impl<B: Budget + Send> FromRequestParts<AppState> for Throttle<B> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Ok(Client(client)) = Client::from_request_parts(parts, state).await;
        state.auth.throttle(B::BUCKET, &client).await?;
        Ok(Self(std::marker::PhantomData))
    }
}
