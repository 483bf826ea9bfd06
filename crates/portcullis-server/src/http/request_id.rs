//! `X-Request-Id` for requests that come without one: a random prefix drawn
//! once at start, then a counter. Unique per process like a random UUID, but
//! without a system call for randomness on every request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderValue, Request};
use tower_http::request_id::{MakeRequestId, RequestId};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Sequential {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl Sequential {
    pub fn new() -> Self {
        let mut prefix = Uuid::new_v4().simple().to_string();
        prefix.truncate(16);
        Self {
            prefix: prefix.into(),
            next: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl MakeRequestId for Sequential {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n:x}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_share_the_process_prefix() {
        let mut make = Sequential::new();
        let request = Request::new(());
        let a = make.make_request_id(&request).expect("id");
        let b = make.make_request_id(&request).expect("id");
        let (a, b) = (a.header_value().clone(), b.header_value().clone());
        assert_ne!(a, b);
        let prefix = |v: &HeaderValue| {
            v.to_str()
                .expect("ascii")
                .split('-')
                .next()
                .map(str::to_owned)
        };
        assert_eq!(prefix(&a), prefix(&b));
        assert_ne!(
            prefix(&a),
            prefix(
                Sequential::new()
                    .make_request_id(&request)
                    .expect("id")
                    .header_value()
            ),
            "another process draws another prefix"
        );
    }
}
