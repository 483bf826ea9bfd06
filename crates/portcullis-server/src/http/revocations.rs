//! `GET /.well-known/revocations`: the feed verifiers follow so that a logout
//! reaches them within about a second. Answered from memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::extract::{AppQuery, Client, require_shared_secret};

const DEFAULT_LIMIT: i64 = 1000;
const MAX_LIMIT: i64 = 10_000;
const MAX_WAIT_SECS: i64 = 30;
const MAX_LONG_POLLS_PER_ADDRESS: usize = 8;

fn number(query: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    query
        .get(name)
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| ApiError::invalid_request(format!("{name} must be an integer")))
        })
        .transpose()
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

pub async fn feed(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    AppQuery(query): AppQuery<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    require_shared_secret(&headers, state.revocations_token.as_ref())?;
    let limit = number(&query, "limit")?
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, MAX_LIMIT);
    let wait = number(&query, "wait")?.unwrap_or(0).clamp(0, MAX_WAIT_SECS);
    let revocations = &state.auth.revocations;
    let (since, reset) = match query.get("since") {
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
