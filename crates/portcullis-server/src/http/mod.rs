//! The HTTP edge: routes, extractors, the one error mapping, and the layers
//! every request passes (limits, timeout, tracing, security headers).

mod admin;
mod auth;
mod cookies;
pub mod error;
mod extract;
mod health;
mod metrics;
mod page;
mod profile;
mod revocations;
mod sessions;
mod verify;
mod wellknown;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, patch, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use self::error::ApiError;
use crate::auth::Auth;
use crate::store::AnyStore;

#[derive(Debug)]
pub struct AppInner {
    pub auth: Auth<AnyStore>,
    pub issuer: String,
    pub public_url: String,
    pub request_timeout: Duration,
    /// Sent as `Strict-Transport-Security` when serving HTTPS directly.
    pub hsts: bool,
    /// `REVOCATIONS_TOKEN`: the feed requires it as a bearer token.
    pub revocations_token: Option<secrecy::SecretString>,
    /// `METRICS_TOKEN`: `/metrics` requires it as a bearer token.
    pub metrics_token: Option<secrecy::SecretString>,
    /// The Prometheus recorder's handle (`None` if another recorder won).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Redis, when configured: revocation broadcast.
    pub bus: Option<Arc<crate::bus::RedisBus>>,
    /// `COOKIE_SECURE`.
    pub cookie_secure: bool,
    /// How long cookie-mode cookies live (the refresh-token lifetime).
    pub cookie_lifetime: Duration,
    /// The server's own origin and `CORS_ALLOWED_ORIGINS`: the only origins a
    /// cookie-authenticated state change may come from.
    pub allowed_origins: Vec<String>,
    /// `TRUSTED_PROXIES`: peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<crate::net::Cidr>,
    /// Long-polls of the feed in progress, per client address.
    pub long_polls: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

pub type AppState = Arc<AppInner>;

/// CORS for the listed origins only, with credentials; any other Origin
/// gets no CORS headers at all (never reflected).
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::Method;
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    (!origins.is_empty()).then(|| {
        tower_http::cors::CorsLayer::new()
            .allow_origin(tower_http::cors::AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static("x-csrf-token"),
            ])
            .max_age(Duration::from_secs(600))
    })
}

pub fn router(state: AppState, cors_origins: &[String]) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route("/api/auth/register", post(auth::register))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/me", get(auth::me).delete(auth::delete_me))
        .route("/api/auth/verify", any(verify::verify))
        .route("/api/auth/verify/{*path}", any(verify::verify_prefixed))
        .route("/api/auth/password/forgot", post(auth::forgot_password))
        .route("/api/auth/password/reset", post(auth::reset_password))
        .route("/api/auth/email/verify", post(auth::verify_email))
        .route("/api/auth/email/resend", post(auth::resend_verification))
        .route("/api/auth/email/confirm", post(auth::confirm_email))
        .route("/api/auth/email", post(auth::change_email))
        .route("/api/auth/refresh", post(auth::refresh))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/auth/logout-all", post(auth::logout_all))
        .route("/api/auth/password", post(auth::change_password))
        .route("/api/auth/sessions", get(sessions::list))
        .route("/api/auth/sessions/{id}", delete(sessions::delete))
        .route(
            "/api/admin/users",
            get(admin::users).post(admin::create_user),
        )
        .route(
            "/api/admin/users/{id}",
            patch(admin::update_user).delete(admin::delete_user),
        )
        .route(
            "/api/admin/users/{id}/password-reset",
            post(admin::password_reset),
        )
        .route("/api/admin/users/{id}/sessions", get(admin::sessions))
        .route(
            "/api/admin/users/{id}/sessions/{sid}",
            delete(admin::end_session),
        )
        .route("/api/admin/keys", get(admin::keys))
        .route("/api/admin/audit", get(admin::audit))
        .route("/api/admin/keys/rotate", post(admin::rotate_key))
        .route("/api/admin/keys/{kid}/revoke", post(admin::revoke_key))
        .route("/api/profile", get(profile::profile))
        .route("/api/data", get(profile::data))
        .route("/.well-known/jwks.json", get(wellknown::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(wellknown::openid_configuration),
        )
        .route("/account", get(page::page))
        .route("/account/account.js", get(page::script))
        .route("/account/account.css", get(page::style))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .fallback(|| async { ApiError::not_found() })
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        // Added after the deadline layer: a long-poll may outlast REQUEST_TIMEOUT.
        .route("/.well-known/revocations", get(revocations::feed))
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .layer(middleware::from_fn(json_method_not_allowed))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .layer(middleware::from_fn(metrics::record))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            // The route template, never the raw URI: a path may carry input.
            tracing::info_span!("request", method = %req.method(), route, request_id = id)
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(tower::util::option_layer(cors(cors_origins)))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("handler panicked");
            ApiError::unavailable().into_response()
        }))
        .with_state(state)
}

/// `REQUEST_TIMEOUT` per request, answered as `503 unavailable` JSON.
async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(state.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!("request timed out");
            ApiError::unavailable().into_response()
        }
    }
}

/// axum answers a known route with the wrong method by a bare 405 with an
/// `Allow` header; the contract wants the JSON error body too.
async fn json_method_not_allowed(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut json = ApiError::method_not_allowed().into_response();
    if let Some(allow) = allow {
        json.headers_mut().insert(header::ALLOW, allow);
    }
    json
}

async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if state.hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}
