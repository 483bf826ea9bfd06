//! The HTTP edge: media types, sizes, malformed bodies, unknown routes and
//! methods, timeouts, headers. Nothing here may ever produce a 5xx.

use reqwest::StatusCode;
use serde_json::json;

use crate::backends;
use crate::helpers::{PASSWORD, TestApp, Tokens, assert_error};

backends! {
    async fn unknown_routes_and_wrong_methods_are_json() {
    let app = TestApp::spawn().await;
    assert_error(
        app.get("/nope", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.get("/api/auth/login/extra", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let response = app.get("/api/auth/login", None).await;
    let allow = response
        .headers()
        .get("allow")
        .cloned()
        .expect("405 carries Allow");
    assert!(allow.to_str().expect("ascii").contains("POST"));
    assert_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    let response = app
        .client
        .delete(app.url("/api/profile"))
        .send()
        .await
        .expect("request");
    assert_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}}

backends! {
    async fn bodies_must_be_json_and_small() {
    let app = TestApp::spawn().await;
    let url = app.url("/api/auth/register");
    let valid =
        json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}).to_string();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonx"),
    ] {
        let mut request = app.client.post(&url).body(valid.clone());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = request.send().await.expect("request");
        assert_error(
            response,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
    let response = app
        .client
        .post(&url)
        .header("content-type", "Application/JSON; charset=utf-8")
        .body(valid)
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "parameters and case are allowed"
    );

    // Oversized bodies go over a raw connection: the server answers 413 as
    // soon as the limit is passed, and an HTTP client still writing the rest
    // would see a broken pipe instead of the answer.
    let huge = json!({"email": "big@example.com", "password": PASSWORD, "name": "x".repeat(1024 * 1024)});
    let (status, body) = raw_post(&app, "/api/auth/register", "application/json", huge.to_string().as_bytes()).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");
    // Size beats media type (API.md's order).
    let (status, body) = raw_post(&app, "/api/auth/register", "text/plain", &vec![b'x'; 70 * 1024]).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");
}}

/// Sends a POST over a plain TCP connection, writing the body from another
/// thread while reading the answer, and returns (status, whole answer).
async fn raw_post(app: &TestApp, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let text = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        let mut writer = stream.try_clone().expect("clone");
        let writing = std::thread::spawn(move || {
            let _ = writer.write_all(&request);
        });
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let _ = writing.join();
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .expect("join");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status line in {text:?}"));
    (status, text)
}

backends! {
    async fn malformed_bodies_are_400_never_5xx() {
    let app = TestApp::spawn().await;
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"string\"".to_vec(),
        b"{\"email\": [1,2], \"password\": {}, \"name\": true}".to_vec(),
        b"{\"email\": \"a@b.co\", \"password\": 12345678, \"name\": \"x\"}".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x7b],
        b"{\"email\": \"a\\u0000@b.co\", \"password\": \"pw\\u0000pw\\u0000pw\", \"name\": \"\\u0000\"}".to_vec(),
        b"{\"email\": \"\\ud800@b.co\", \"password\": \"x\", \"name\": \"x\"}".to_vec(),
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
    ];
    for path in ["/api/auth/register", "/api/auth/login"] {
        for body in &bodies {
            let response = app
                .client
                .post(app.url(path))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("request");
            let status = response.status();
            assert!(
                status.is_client_error(),
                "{path} {:?} gave {status}",
                String::from_utf8_lossy(body)
            );
            let json: serde_json::Value = response.json().await.expect("JSON error body");
            assert!(json["code"].is_string());
        }
    }
}}

backends! {
    async fn security_headers_on_every_response() {
    let app = TestApp::spawn().await;
    for response in [
        app.get("/healthz", None).await,
        app.get("/nope", None).await,
        app.get("/api/profile", None).await,
        app.get("/.well-known/jwks.json", None).await,
    ] {
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert!(headers.contains_key("x-request-id"));
        assert!(
            !headers.contains_key("strict-transport-security"),
            "HSTS only over TLS"
        );
    }
}}

#[tokio::test]
async fn a_request_keeps_the_id_it_came_with_and_others_get_distinct_ones() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/nope", "/api/profile"] {
        let response = app
            .client
            .get(app.url(path))
            .header("x-request-id", "edge-42")
            .send()
            .await
            .expect("request");
        assert_eq!(response.headers()["x-request-id"], "edge-42", "{path}");
    }
    let a = app.get("/healthz", None).await;
    let b = app.get("/healthz", None).await;
    assert_ne!(a.headers()["x-request-id"], b.headers()["x-request-id"]);
}

backends! {
    async fn a_request_over_the_timeout_is_503_json() {
    // Hashing one password takes far longer than 1 ms.
    let app = TestApp::spawn_with(&[("REQUEST_TIMEOUT", "1ms")]).await;
    let response = app.register("slow@example.com", PASSWORD, "Slow").await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
}}

#[tokio::test]
async fn readiness_fails_while_the_database_cannot_take_a_write() {
    let app = TestApp::spawn_with(&[("REQUEST_TIMEOUT", "1s")]).await;
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);
    // Another process holds SQLite's write lock, as a stuck writer would.
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(app.sqlite_file())
        .busy_timeout(std::time::Duration::from_secs(5));
    let mut blocker = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options)
        .await
        .expect("open");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .expect("lock");
    assert_error(
        app.get("/readyz", None).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    )
    .await;
    assert_eq!(
        app.get("/healthz", None).await.status(),
        StatusCode::OK,
        "liveness does not depend on the database"
    );
    sqlx::query("ROLLBACK")
        .execute(&mut blocker)
        .await
        .expect("unlock");
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);
}

backends! {
    async fn size_and_media_type_come_before_authentication() {
        let app = TestApp::spawn().await;
        let url = app.url("/api/auth/password");
        // No credential at all, yet the body's problems are reported first.
        let response = app.client.post(&url).header("content-type", "text/plain").body("x").send().await.expect("request");
        assert_error(response, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
        let (status, body) = raw_post(&app, "/api/auth/password", "application/json", &vec![b' '; 70 * 1024]).await;
        assert_eq!(status, 413, "{body}");
        // A valid JSON body without a credential: 401.
        let response = app.post_json("/api/auth/password", &json!({"current_password": "x", "new_password": "y"})).await;
        assert_error(response, StatusCode::UNAUTHORIZED, "missing_token").await;
        // Authenticated, malformed body: 400 after authentication.
        let (_, user) = app.new_user().await;
        let token = user["tokens"]["access_token"].as_str().expect("token");
        let response = app.client.post(&url).bearer_auth(token).header("content-type", "application/json").body("{").send().await.expect("request");
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

/// A malformed query is a JSON 400 like every other bad input.
#[tokio::test]
async fn malformed_queries_are_json_errors() {
    let app = TestApp::spawn().await;
    let (_, body) = app.new_user().await;
    let tokens = Tokens::of(&body["tokens"]);
    let root = app.admin().await;
    let response = app
        .get("/api/auth/verify?role=a&role=b", Some(&tokens.access))
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    let response = app
        .get("/api/admin/users?limit=lots", Some(&root.access))
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
}
