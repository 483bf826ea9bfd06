//! What operators and integrators read: `/metrics` (Prometheus text).

use std::time::Duration;

use reqwest::StatusCode;

use crate::backends;
use crate::helpers::{PASSWORD, TestApp, Tokens, assert_error, sample};

const METRICS_TOKEN: &str = "metrics-scraper-secret-0123456789";

async fn scrape(app: &TestApp) -> String {
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/plain; version=0.0.4")
    );
    response.text().await.expect("text")
}

backends! {
    async fn metrics_count_what_happens_and_leak_nothing() {
        let app = TestApp::spawn_with(&[("METRICS_TOKEN", METRICS_TOKEN), ("REFRESH_GRACE", "1s")]).await;
        assert_error(app.get("/metrics", None).await, StatusCode::UNAUTHORIZED, "missing_token").await;
        assert_error(app.get("/metrics", Some("not-the-token")).await, StatusCode::UNAUTHORIZED, "invalid_token").await;

        let (email, body) = app.new_user().await;
        let first = Tokens::of(&body["tokens"]);
        assert_error(app.login(&email, "wrong password").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        for _ in 0..3 {
            assert_eq!(app.get("/api/profile", Some(&first.access)).await.status(), StatusCode::OK);
        }
        // A rotation, a retry inside the grace window, a replay after it.
        let rotated = app.refresh(&first.refresh).await;
        assert_eq!(rotated.status(), StatusCode::OK);
        assert_eq!(app.refresh(&first.refresh).await.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_error(app.refresh(&first.refresh).await, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
        // Two live sessions, one ended by a logout.
        let second = app.session_of(&email).await;
        let third = app.session_of(&email).await;
        let sid = third.claims()["sid"].as_str().expect("sid").to_owned();
        let deleted = app.client.delete(app.url(&format!("/api/auth/sessions/{sid}")))
            .bearer_auth(&second.access).send().await.expect("request");
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);

        let text = scrape(&app).await;
        let value = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"));
        let login = [("method", "POST"), ("route", "/api/auth/login"), ("status", "200")];
        assert!(value("portcullis_http_requests_total", &login) >= 2.0);
        assert_eq!(value("portcullis_http_requests_total", &[("route", "/api/auth/login"), ("status", "401")]), 1.0);
        assert!(value("portcullis_http_request_duration_seconds_count", &[("route", "/api/auth/login")]) >= 3.0);
        assert!(value("portcullis_http_request_duration_seconds_bucket", &[("route", "/api/profile"), ("le", "+Inf")]) >= 3.0);
        // Route templates, never raw paths.
        assert_eq!(value("portcullis_http_requests_total", &[("route", "/api/auth/sessions/{id}"), ("method", "DELETE")]), 1.0);
        assert!(!text.contains(&sid), "a raw path reached a label");

        assert_eq!(value("portcullis_logins_total", &[("result", "ok")]), 2.0);
        assert_eq!(value("portcullis_logins_total", &[("result", "failed")]), 1.0);
        assert_eq!(value("portcullis_refreshes_total", &[("result", "rotated")]), 1.0);
        assert_eq!(value("portcullis_refreshes_total", &[("result", "grace_replay")]), 1.0);
        assert_eq!(value("portcullis_refreshes_total", &[("result", "reused")]), 1.0);
        assert_eq!(value("portcullis_security_events_total", &[("type", "refresh_token_reused")]), 1.0);
        assert_eq!(value("portcullis_revocations_total", &[("kind", "sid")]), 2.0);
        assert!(value("portcullis_revocation_set_size", &[]) >= 2.0);
        // The same token three times: verified in full once.
        assert!(value("portcullis_verification_cache_hits_total", &[]) >= 2.0);
        assert!(value("portcullis_verification_cache_misses_total", &[]) >= 1.0);
        // Three sessions opened by register and logins, two ended (reuse, delete).
        assert_eq!(value("portcullis_active_sessions", &[]), 1.0);
        // register hashes, three logins verify.
        assert!(value("portcullis_password_hash_wait_seconds_count", &[]) >= 4.0);
        assert_eq!(value("portcullis_password_hash_queue_depth", &[]), 0.0);
        let cost = value("portcullis_password_hash_cost_seconds", &[]);
        assert!((0.0..5.0).contains(&cost) && cost > 0.0, "{cost}");
        let age = value("portcullis_signing_key_age_seconds", &[]);
        assert!((0.0..60.0).contains(&age), "{age}");

        for secret in [email.as_str(), PASSWORD, &first.access, &first.refresh, METRICS_TOKEN] {
            assert!(!text.contains(secret), "the metrics carry a secret or an address");
        }
    }
}

/// Without `METRICS_TOKEN` the endpoint is open (a scraper on a private
/// network), and counts from the first request.
#[tokio::test]
async fn metrics_are_open_without_a_token() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/nothing-here", None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let text = app.get("/metrics", None).await.text().await.expect("text");
    let unmatched = sample(
        &text,
        "portcullis_http_requests_total",
        &[("route", "unmatched"), ("status", "404")],
    );
    assert_eq!(unmatched, Some(1.0), "{text}");
    assert!(!text.contains("nothing-here"));
}

/// Every route of API.md, as the document must list it.
const CONTRACT_ROUTES: &[(&str, &str)] = &[
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
    ("post", "/api/auth/refresh"),
    ("post", "/api/auth/logout"),
    ("post", "/api/auth/logout-all"),
    ("get", "/api/auth/me"),
    ("delete", "/api/auth/me"),
    ("get", "/api/auth/sessions"),
    ("delete", "/api/auth/sessions/{id}"),
    ("post", "/api/auth/password"),
    ("post", "/api/auth/password/forgot"),
    ("post", "/api/auth/password/reset"),
    ("post", "/api/auth/email"),
    ("post", "/api/auth/email/verify"),
    ("post", "/api/auth/email/resend"),
    ("post", "/api/auth/email/confirm"),
    ("get", "/api/auth/verify"),
    ("get", "/api/profile"),
    ("get", "/api/data"),
    ("get", "/api/admin/users"),
    ("post", "/api/admin/users"),
    ("patch", "/api/admin/users/{id}"),
    ("delete", "/api/admin/users/{id}"),
    ("post", "/api/admin/users/{id}/password-reset"),
    ("get", "/api/admin/users/{id}/sessions"),
    ("delete", "/api/admin/users/{id}/sessions/{sid}"),
    ("get", "/api/admin/keys"),
    ("post", "/api/admin/keys/rotate"),
    ("post", "/api/admin/keys/{kid}/revoke"),
    ("get", "/api/admin/audit"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/.well-known/openid-configuration"),
    ("get", "/.well-known/revocations"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
    ("get", "/account"),
];

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

/// The served document lists every route of the contract and equals the
/// committed `openapi.json`, so a change to it is always a reviewed one:
/// `UPDATE_OPENAPI_SNAPSHOT=1 cargo test -p portcullis-server --test api openapi`
/// rewrites the file.
#[tokio::test]
async fn the_openapi_document_is_complete_and_unchanged() {
    let app = TestApp::spawn().await;
    let response = app.get("/openapi.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served: serde_json::Value = response.json().await.expect("json");
    assert_eq!(served["openapi"], "3.1.0");
    for (method, path) in CONTRACT_ROUTES {
        assert!(
            served["paths"][path][method].is_object(),
            "{method} {path} is not in the document"
        );
    }
    let pretty = serde_json::to_string_pretty(&served).expect("json") + "\n";
    if std::env::var("UPDATE_OPENAPI_SNAPSHOT").as_deref() == Ok("1") {
        std::fs::write(SNAPSHOT, &pretty).expect("write the snapshot");
        return;
    }
    let committed = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        committed == pretty,
        "/openapi.json differs from crates/portcullis-server/openapi.json; if the change is \
         intended, rerun with UPDATE_OPENAPI_SNAPSHOT=1 and commit the file"
    );
}

/// `/docs` is Swagger UI from files in the binary, pointed at the document,
/// under a CSP that allows nothing from elsewhere.
#[tokio::test]
async fn the_docs_page_is_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let page = app.get("/docs/", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let html = page.text().await.expect("html");
    assert!(
        html.contains("swagger-ui-bundle.js") && !html.contains("http"),
        "{html}"
    );
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css"] {
        let response = app.get(&format!("/docs/{asset}"), None).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
    }
    let init = app
        .get("/docs/swagger-initializer.js", None)
        .await
        .text()
        .await
        .expect("js");
    assert!(init.contains("/openapi.json"), "{init}");
}
