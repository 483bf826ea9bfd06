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

/// The id the request came with, else a new one.
pub fn of(headers: &HeaderMap) -> HeaderValue {
    headers.get(HEADER).cloned().unwrap_or_else(next)
}

/// `<16 hex digits of the process>-<counter in hex>`, written by hand: the
/// `format!` and `String` conversion it replaces were ~1 700 instructions,
/// on every request.
fn next() -> HeaderValue {
    static PREFIX: LazyLock<[u8; 16]> = LazyLock::new(|| {
        let mut prefix = [0; 16];
        prefix.copy_from_slice(&uuid::Uuid::new_v4().simple().to_string().as_bytes()[..16]);
        prefix
    });
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut id = [0u8; 33];
    id[..16].copy_from_slice(&*PREFIX);
    id[16] = b'-';
    let digits = (n.max(1).ilog2() / 4 + 1) as usize;
    for (i, slot) in id[17..17 + digits].iter_mut().rev().enumerate() {
        *slot = b"0123456789abcdef"[(n >> (4 * i) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&id[..17 + digits]).expect("hex digits and a dash")
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
        let (a, b) = (of(&HeaderMap::new()), of(&HeaderMap::new()));
        assert_ne!(a, b);
        assert_eq!(prefix(&a), prefix(&b));
        assert_eq!(prefix(&a).len(), 16);
        let counter = |v: &HeaderValue| {
            let (_, n) = v.to_str().expect("ascii").split_once('-').expect("dash");
            u64::from_str_radix(n, 16).expect("hex")
        };
        assert_eq!(counter(&b), counter(&a) + 1);
    }

    #[test]
    fn a_request_keeps_the_id_it_came_with() {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_static("from-the-proxy"));
        assert_eq!(of(&headers), "from-the-proxy");
    }
}
