//! `GET /.well-known/revocations`: the feed verifiers follow so that a logout
//! reaches them within about a second. Answered from memory.

use std::net::IpAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::extract::{AppQuery, Client, require_shared_secret};
use super::openapi::ErrorBody;
use crate::auth::revocation::FeedPage;

const DEFAULT_LIMIT: i64 = 1000;
const MAX_LIMIT: i64 = 10_000;
const MAX_WAIT_SECS: i64 = 30;
const MAX_LONG_POLLS_PER_ADDRESS: usize = 8;

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The `cursor` of an earlier answer; without it (or with an unknown
    /// one) the answer is a snapshot of every live entry.
    since: Option<String>,
    /// Long-poll up to this many seconds (at most 30) for something new.
    wait: Option<i64>,
    /// At most this many entries (1 to 10000, default 1000).
    limit: Option<i64>,
}

/// Releases a long-poll slot of an address when the request ends, however
/// it ends.
struct LongPollSlot<'a> {
    state: &'a AppState,
    ip: IpAddr,
}

impl Drop for LongPollSlot<'_> {
    fn drop(&mut self) {
        let mut polls = self
            .state
            .long_polls
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = polls.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                polls.remove(&self.ip);
            }
        }
    }
}

fn take_slot(state: &AppState, ip: IpAddr) -> Option<LongPollSlot<'_>> {
    let mut polls = state.long_polls.lock().unwrap_or_else(|p| p.into_inner());
    let count = polls.entry(ip).or_insert(0);
    if *count >= MAX_LONG_POLLS_PER_ADDRESS {
        return None;
    }
    *count += 1;
    Some(LongPollSlot { state, ip })
}

/// The feed's route, which [`super::edge`] exempts from `REQUEST_TIMEOUT`
/// (the `path` below must be the same literal).
pub const FEED_PATH: &str = "/.well-known/revocations";

#[utoipa::path(get, path = "/.well-known/revocations", tag = "verification", params(FeedQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Revocations after the cursor (`Cache-Control: no-store`); every revocation committed after an answer with cursor C appears in a later `since=C` answer, on any instance", body = FeedPage),
        (status = 400, description = "invalid_request: `wait` or `limit` not an integer", body = ErrorBody),
        (status = 401, description = "missing_token or invalid_token: REVOCATIONS_TOKEN is set and was not sent", body = ErrorBody),
        (status = 429, description = "rate_limited: more than 8 long-polls from one address at once", body = ErrorBody),
    ))]
pub async fn feed(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    AppQuery(query): AppQuery<FeedQuery>,
) -> Result<Response, ApiError> {
    require_shared_secret(&headers, state.revocations_token.as_ref())?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let wait = query.wait.unwrap_or(0).clamp(0, MAX_WAIT_SECS);
    let revocations = &state.auth.revocations;
    let (since, reset) = match &query.since {
        None => (None, false),
        Some(cursor) => match revocations.parse_cursor(cursor) {
            Some(id) => (Some(id), false),
            None => (None, true),
        },
    };
    let limit = usize::try_from(limit).unwrap_or(1000);
    let mut page = revocations.page(since, reset, limit);
    if page.revoked.is_empty() && since.is_some() && wait > 0 {
        let ip = client
            .ip
            .and_then(|ip| ip.parse().ok())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let Some(_slot) = take_slot(&state, ip) else {
            return Err(ApiError::rate_limited(
                "at most 8 long-polls per address at once",
                Duration::from_secs(1),
            ));
        };
        let mut changes = revocations.subscribe();
        let start = since.unwrap_or(0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait.unsigned_abs());
        while *changes.borrow_and_update() <= start {
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => break,
            }
        }
        page = revocations.page(since, reset, limit);
    }
    let mut response = Json(page).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
