//! The HTTP edge: routes, extractors, the one error mapping, and the layers
//! every request passes (limits, timeout, tracing, security headers).

mod admin;
mod auth;
mod cookies;
pub mod error;
mod extract;
mod health;
mod metrics;
mod openapi;
mod page;
mod profile;
mod request_id;
mod revocations;
mod sessions;
mod verify;
mod wellknown;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

/// Every documented route, each through `routes!`: its operation and its
/// route cannot part ways. The revocation feed in a router of its own.
fn documented() -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    let api = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::me, auth::delete_me))
        .routes(routes!(verify::verify))
        .routes(routes!(auth::forgot_password))
        .routes(routes!(auth::reset_password))
        .routes(routes!(auth::verify_email))
        .routes(routes!(auth::resend_verification))
        .routes(routes!(auth::confirm_email))
        .routes(routes!(auth::change_email))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::logout_all))
        .routes(routes!(auth::change_password))
        .routes(routes!(sessions::list))
        .routes(routes!(sessions::delete))
        .routes(routes!(admin::users, admin::create_user))
        .routes(routes!(admin::update_user, admin::delete_user))
        .routes(routes!(admin::password_reset))
        .routes(routes!(admin::sessions))
        .routes(routes!(admin::end_session))
        .routes(routes!(admin::keys))
        .routes(routes!(admin::audit))
        .routes(routes!(admin::rotate_key))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(profile::profile))
        .routes(routes!(profile::data))
        .routes(routes!(wellknown::jwks))
        .routes(routes!(wellknown::openid_configuration))
        .routes(routes!(page::page))
        .routes(routes!(page::script))
        .routes(routes!(page::style))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi::document));
    let feed = OpenApiRouter::new().routes(routes!(revocations::feed));
    (api, feed)
}

/// The OpenAPI document of every route, from the same routes the server
/// runs. Built when first asked for, not at start-up: building it peaks at
/// ~3 MB and its JSON is 234 KB, which an idle server need not hold.
fn api_document() -> utoipa::openapi::OpenApi {
    let (api, feed) = documented();
    let (_, mut document) = api.split_for_parts();
    document.merge(feed.split_for_parts().1);
    document
}

/// The service the server runs: the routes, with the layers that need the
/// matched route inside the router and the rest around it. A layer added
/// with `Router::layer` wraps every route's service, and the router clones
/// a route's whole service stack for each request: outside, a layer is one
/// call with no clone. Not boxed: a boxed service is cloned into a new
/// allocation for every request.
pub fn router<B>(
    state: AppState,
    cors_origins: &[String],
) -> impl tower::Service<
    axum::http::Request<B>,
    Response = Response,
    Error = Infallible,
    Future = impl Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let (api, feed) = documented();
    let (api, _) = api.split_for_parts();
    let (feed, _) = feed.split_for_parts();
    let routes = api
        // Envoy's ext_authz shape: any path below the prefix (see verify.rs).
        .route("/api/auth/verify/{*path}", any(verify::verify_prefixed))
        .merge(openapi::docs())
        .merge(feed)
        .fallback(|| async { ApiError::not_found() })
        .layer(middleware::from_fn_with_state(state.clone(), edge))
        .with_state(state);
    tower::ServiceBuilder::new()
        .map_request(|req: axum::http::Request<B>| req.map(axum::body::Body::new))
        .map_response(IntoResponse::into_response)
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("handler panicked");
            ApiError::unavailable().into_response()
        }))
        .option_layer(cors(cors_origins))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .service(routes)
}

/// What every routed request gets, in one layer (each layer inside the
/// router costs a clone of the route's stack per request): a span naming
/// the route template, which only exists inside the router; the deadline;
/// the contract's JSON 405; security headers; the request's metrics.
async fn edge(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = request_id::of(req.headers());
    let observed = metrics::Observed::start(&req);
    let span = request_span(&req, observed.route(), &id);
    // A long-poll of the feed may outlast REQUEST_TIMEOUT by design.
    let timeout = (observed.route() != revocations::FEED_PATH).then_some(state.request_timeout);
    let response = within(timeout, next.run(req)).instrument(span).await;
    let mut response = json_method_not_allowed(response);
    security_headers(response.headers_mut(), state.hsts);
    response.headers_mut().insert(request_id::HEADER, id);
    observed.finish(response.status());
    response
}

/// The request's span: the route template, never the raw URI (a path may
/// carry input), and the request id that the response carries too.
fn request_span(req: &Request, route: &str, id: &HeaderValue) -> tracing::Span {
    let id = id.to_str().unwrap_or_default();
    tracing::info_span!("request", method = %req.method(), route, request_id = id)
}

/// `REQUEST_TIMEOUT`, answered as `503 unavailable` JSON.
async fn within(timeout: Option<Duration>, run: impl Future<Output = Response>) -> Response {
    let Some(timeout) = timeout else {
        return run.await;
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!("request timed out");
            ApiError::unavailable().into_response()
        }
    }
}

/// axum answers a known route with the wrong method by a bare 405 with an
/// `Allow` header; the contract wants the JSON error body too.
fn json_method_not_allowed(response: Response) -> Response {
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

fn security_headers(headers: &mut HeaderMap, hsts: bool) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
}
