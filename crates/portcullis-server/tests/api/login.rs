use reqwest::StatusCode;
use serde_json::json;

use crate::backends;
use crate::helpers::{PASSWORD, TestApp, assert_error};

backends! {
    async fn login_returns_user_and_tokens_and_opens_a_session() {
    let app = TestApp::spawn().await;
    let (email, registered) = app.new_user().await;
    let response = app
        .post_json(
            "/api/auth/login",
            &json!({"email": format!("  {} ", email.to_uppercase()), "password": PASSWORD, "device_name": "Ada's laptop"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["user"], registered["user"]);
    assert_eq!(body["tokens"]["token_type"], "Bearer");
    assert_ne!(
        body["tokens"]["refresh_token"],
        registered["tokens"]["refresh_token"]
    );

    let count: i64 = app.scalar("SELECT COUNT(*) FROM sessions").await;
    let device: String = app
        .scalar("SELECT device_name FROM sessions WHERE device_name IS NOT NULL")
        .await;
    assert_eq!(count, 2, "register and login each open a session");
    assert_eq!(device, "Ada's laptop");
}}

backends! {
    async fn wrong_password_and_unknown_email_look_the_same() {
    let app = TestApp::spawn().await;
    let (email, _) = app.new_user().await;
    let wrong = assert_error(
        app.login(&email, "not the password").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let unknown = assert_error(
        app.login("nobody@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let malformed = assert_error(
        app.login("not an email", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, malformed);
    // Length rules never apply at login: a long wrong password is just wrong.
    assert_error(
        app.login(&email, &"x".repeat(500)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
}}

backends! {
    async fn a_disabled_account_is_refused_only_after_a_correct_password() {
    let app = TestApp::spawn().await;
    let (email, _) = app.new_user().await;
    app.sql(&format!("UPDATE users SET disabled = true WHERE email = '{email}'")).await;
    assert_error(
        app.login(&email, "wrong password!").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_error(
        app.login(&email, PASSWORD).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}}

backends! {
    async fn bcrypt_hashes_from_the_go_design_verify_and_are_rehashed_to_argon2id() {
    let app = TestApp::spawn().await;
    let (email, _) = app.new_user().await;
    // What golang.org/x/crypto/bcrypt stores: $2a$, cost 10.
    let go_hash = bcrypt::hash("hunter2-from-go", 10)
        .expect("bcrypt")
        .replacen("$2b$", "$2a$", 1);
    app.sql(&format!("UPDATE users SET password_hash = '{go_hash}' WHERE email = '{email}'")).await;
    assert_error(
        app.login(&email, "wrong").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        app.login(&email, "hunter2-from-go").await.status(),
        StatusCode::OK
    );
    let stored: String = app
        .scalar(&format!("SELECT password_hash FROM users WHERE email = '{email}'"))
        .await;
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert_eq!(
        app.login(&email, "hunter2-from-go").await.status(),
        StatusCode::OK
    );
}}

backends! {
    async fn a_full_hashing_queue_answers_503_with_retry_after() {
    let app = TestApp::spawn_with(&[("HASH_QUEUE_LIMIT", "0")]).await;
    let (email, _) = app.new_user().await;
    let attempts = (0..24).map(|_| {
        let client = app.client.clone();
        let url = app.url("/api/auth/login");
        let body = json!({"email": email, "password": PASSWORD});
        async move { client.post(url).json(&body).send().await.expect("request") }
    });
    let responses = futures_join_all(attempts).await;
    let mut busy = 0;
    for response in responses {
        match response.status() {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                busy += 1;
                assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        busy > 0,
        "24 concurrent logins on a queue of 0 never overflowed"
    );
}}

/// Joins request futures without another dependency.
async fn futures_join_all<F: std::future::Future<Output = reqwest::Response> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<reqwest::Response> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("join"));
    }
    out
}
