//! `GET /metrics` (Prometheus text) and the layer that counts and times
//! every request by its route template.

use std::collections::HashMap;
use std::sync::{LazyLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Histogram};

use super::AppState;
use super::error::ApiError;
use super::extract::require_shared_secret;
use crate::metrics::{
    ACTIVE_SESSIONS, HASH_COST, HTTP_DURATION, HTTP_REQUESTS, KEY_AGE, REVOCATION_SET,
};
use crate::store::Store;

/// Counting live sessions is a database read: bounded so a slow database
/// cannot hold a scrape, which then reports the last count.
const SESSION_COUNT_BUDGET: Duration = Duration::from_millis(500);

#[utoipa::path(get, path = "/metrics", tag = "operations", security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
        (status = 401, description = "missing_token or invalid_token: METRICS_TOKEN is set and was not sent", body = super::openapi::ErrorBody),
    ))]
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_shared_secret(&headers, state.metrics_token.as_ref())?;
    let Some(handle) = &state.metrics else {
        return Err(ApiError::unavailable());
    };
    let now = crate::auth::now();
    metrics::gauge!(REVOCATION_SET).set(state.auth.revocations.len() as f64);
    metrics::gauge!(HASH_COST).set(state.auth.passwords.argon2_time().as_secs_f64());
    if let Some(age) = state.auth.keys.signing_age(now) {
        metrics::gauge!(KEY_AGE).set(age as f64);
    }
    let count = state.auth.store.count_live_sessions(now);
    if let Ok(Ok(live)) = tokio::time::timeout(SESSION_COUNT_BUDGET, count).await {
        metrics::gauge!(ACTIVE_SESSIONS).set(live as f64);
    }
    let mut response = handle.render().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// One request being observed: counted and timed by method, route
/// template (never the raw path: it may carry input, and would make labels
/// unbounded) and status.
pub struct Observed {
    method: &'static str,
    route: Option<MatchedPath>,
    started: Instant,
}

impl Observed {
    pub fn start(req: &Request) -> Self {
        let method: &'static str = match *req.method() {
            Method::GET => "GET",
            Method::HEAD => "HEAD",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            Method::OPTIONS => "OPTIONS",
            _ => "OTHER",
        };
        Self {
            method,
            route: req.extensions().get::<MatchedPath>().cloned(),
            started: Instant::now(),
        }
    }

    /// The route template, or `unmatched`.
    pub fn route(&self) -> &str {
        self.route.as_ref().map_or("unmatched", MatchedPath::as_str)
    }

    pub fn finish(self, status: StatusCode) {
        let (requests, duration) = series(self.method, self.route(), status.as_u16());
        duration.record(self.started.elapsed().as_secs_f64());
        requests.increment(1);
    }
}

/// The handles of one route template's series, registered on first use.
#[derive(Default)]
struct RouteSeries {
    requests: Vec<(&'static str, u16, Counter)>,
    durations: Vec<(&'static str, Histogram)>,
}

impl RouteSeries {
    fn counter(&self, method: &str, status: u16) -> Option<&Counter> {
        self.requests
            .iter()
            .find(|(m, s, _)| *m == method && *s == status)
            .map(|(_, _, counter)| counter)
    }

    fn histogram(&self, method: &str) -> Option<&Histogram> {
        self.durations
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, histogram)| histogram)
    }

    fn get(&self, method: &str, status: u16) -> Option<(Counter, Histogram)> {
        Some((
            self.counter(method, status)?.clone(),
            self.histogram(method)?.clone(),
        ))
    }

    /// [`Self::get`], registering in the recorder what is missing.
    fn register(&mut self, method: &'static str, route: &str, status: u16) -> (Counter, Histogram) {
        let counter = match self.counter(method, status) {
            Some(counter) => counter.clone(),
            None => {
                let counter = metrics::counter!(HTTP_REQUESTS, "method" => method,
                    "route" => route.to_owned(), "status" => status.to_string());
                self.requests.push((method, status, counter.clone()));
                counter
            }
        };
        let histogram = match self.histogram(method) {
            Some(histogram) => histogram.clone(),
            None => {
                let histogram = metrics::histogram!(HTTP_DURATION, "method" => method,
                    "route" => route.to_owned());
                self.durations.push((method, histogram.clone()));
                histogram
            }
        };
        (counter, histogram)
    }
}

/// Series by route template. Looking a series up in the recorder builds
/// and hashes a key of owned label strings (~5 000 instructions a request,
/// callgrind); a kept handle is an atomic add. Bounded: templates × methods
/// × statuses. Handles are bound to the recorder installed at start-up,
/// before the first request.
static SERIES: LazyLock<RwLock<HashMap<String, RouteSeries>>> = LazyLock::new(Default::default);

fn series(method: &'static str, route: &str, status: u16) -> (Counter, Histogram) {
    let known = SERIES
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(route)
        .and_then(|series| series.get(method, status));
    known.unwrap_or_else(|| {
        SERIES
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(route.to_owned())
            .or_default()
            .register(method, route, status)
    })
}
