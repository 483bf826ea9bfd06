//! `X-Request-Id`: a request keeps the one it came with, else gets one made
//! of a random prefix drawn once per process and a counter, unique per
//! process like a random UUID but without a system call for randomness on
//! every request. Done in the router's one layer rather than by tower-http's
//! two request-id layers: each of those costs a stored extension and a
//! wrapped future per request.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, HeaderName, HeaderValue};

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, set in `headers` if it had none.
pub fn ensure(headers: &mut HeaderMap) -> HeaderValue {
    if let Some(id) = headers.get(HEADER) {
        return id.clone();
    }
    let id = next();
    headers.insert(HEADER, id.clone());
    id
}

fn next() -> HeaderValue {
    static PREFIX: LazyLock<String> = LazyLock::new(|| {
        let mut prefix = uuid::Uuid::new_v4().simple().to_string();
        prefix.truncate(16);
        prefix
    });
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    HeaderValue::try_from(format!("{}-{n:x}", *PREFIX)).expect("hex digits and a dash")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(id: &HeaderValue) -> &str {
        id.to_str()
            .expect("ascii")
            .split('-')
            .next()
            .expect("prefix")
    }

    #[test]
    fn made_ids_are_distinct_and_share_the_process_prefix() {
        let (mut a, mut b) = (HeaderMap::new(), HeaderMap::new());
        let (a, b) = (ensure(&mut a), ensure(&mut b));
        assert_ne!(a, b);
        assert_eq!(prefix(&a), prefix(&b));
        assert_eq!(prefix(&a).len(), 16);
    }

    #[test]
    fn a_request_keeps_the_id_it_came_with() {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_static("from-the-proxy"));
        assert_eq!(ensure(&mut headers), "from-the-proxy");
        assert_eq!(headers.get_all(HEADER).iter().count(), 1);
    }
}
