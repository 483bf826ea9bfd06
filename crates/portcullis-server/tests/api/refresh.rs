//! Refresh rotation, the grace rule and reuse detection (API.md, refresh).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backends;
use crate::helpers::{TestApp, Tokens, assert_error, refresh_all_at_once};

async fn pair(app: &TestApp, refresh: &str) -> Tokens {
    let response = app.refresh(refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    Tokens::of(&body)
}

backends! {
    async fn each_refresh_spends_the_token_and_issues_a_successor() {
    let app = TestApp::spawn().await;
    let (_, body) = app.new_user().await;
    let first = Tokens::of(&body["tokens"]);
    let mut current = first.clone();
    for _ in 0..5 {
        let next = pair(&app, &current.refresh).await;
        assert_ne!(next.refresh, current.refresh);
        assert_ne!(next.access, current.access);
        assert_eq!(next.claims()["sid"], first.claims()["sid"], "same session");
        assert_eq!(
            app.get("/api/profile", Some(&next.access)).await.status(),
            StatusCode::OK
        );
        current = next;
    }
    // The refresh token is never an access token, and vice versa.
    assert_error(
        app.get("/api/profile", Some(&current.refresh)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_error(
        app.refresh(&current.access).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
}}

backends! {
    async fn a_retry_within_the_grace_window_returns_the_very_same_pair() {
    let app = TestApp::spawn().await;
    let (_, body) = app.new_user().await;
    let first = Tokens::of(&body["tokens"]);
    let a = pair(&app, &first.refresh).await;
    let b = pair(&app, &first.refresh).await;
    assert_eq!(a, b);
    // The successor still works, once.
    let c = pair(&app, &a.refresh).await;
    assert_ne!(c, a);
}}

backends! {
    async fn concurrent_refreshes_of_one_token_get_one_identical_pair() {
    let app = TestApp::spawn().await;
    let (_, body) = app.new_user().await;
    let token = Tokens::of(&body["tokens"]).refresh;
    let pairs = refresh_all_at_once((0..8).map(|_| (&app, token.as_str()))).await;
    assert!(pairs.windows(2).all(|w| w[0] == w[1]), "{pairs:?}");
    let successors: i64 = app
        .scalar("SELECT COUNT(*) FROM refresh_tokens WHERE spent_at IS NULL")
        .await;
    assert_eq!(successors, 1, "exactly one successor was stored");
}}

backends! {
    async fn concurrent_refreshes_of_many_sessions_each_rotate_their_own_chain() {
    // Rotations waiting for the writer are stored together in one
    // transaction: each must still win or lose on its own.
    let app = TestApp::spawn().await;
    let (email, body) = app.new_user().await;
    let mut tokens = vec![Tokens::of(&body["tokens"]).refresh];
    for _ in 0..7 {
        tokens.push(app.session_of(&email).await.refresh);
    }
    for _round in 0..3 {
        let next = refresh_all_at_once(tokens.iter().map(|t| (&app, t.as_str()))).await;
        let sessions: std::collections::HashSet<_> =
            next.iter().map(|t| t.claims()["sid"].clone()).collect();
        assert_eq!(sessions.len(), 8, "each session kept its own chain");
        tokens = next.into_iter().map(|t| t.refresh).collect();
    }
    let unspent: i64 = app
        .scalar("SELECT COUNT(*) FROM refresh_tokens WHERE spent_at IS NULL")
        .await;
    assert_eq!(unspent, 8, "one live token per session");
    let spent: i64 = app
        .scalar("SELECT COUNT(*) FROM refresh_tokens WHERE spent_at IS NOT NULL AND successor_hash IS NOT NULL")
        .await;
    assert_eq!(spent, 24, "every rotation was stored");
}}

backends! {
    async fn reuse_after_the_grace_window_revokes_that_session_only() {
    let app = TestApp::spawn_with(&[("REFRESH_GRACE", "1s")]).await;
    let (email, body) = app.new_user().await;
    let stolen = Tokens::of(&body["tokens"]);
    let other_session = app.session_of(&email).await;
    let legit = pair(&app, &stolen.refresh).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    assert_error(
        app.refresh(&stolen.refresh).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_reused",
    )
    .await;
    // Every token of that session is dead...
    assert_error(
        app.refresh(&legit.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert_error(
        app.get("/api/profile", Some(&legit.access)).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    assert_error(
        app.get("/api/profile", Some(&stolen.access)).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    // ...a second replay is no longer "reuse": the session is gone.
    assert_error(
        app.refresh(&stolen.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    // The user's other session lives on.
    assert_eq!(
        app.get("/api/profile", Some(&other_session.access))
            .await
            .status(),
        StatusCode::OK
    );
    pair(&app, &other_session.refresh).await;
}}

backends! {
    async fn a_retry_after_the_successor_was_used_is_reuse_even_within_grace() {
    let app = TestApp::spawn().await;
    let (_, body) = app.new_user().await;
    let first = Tokens::of(&body["tokens"]);
    let second = pair(&app, &first.refresh).await;
    let third = pair(&app, &second.refresh).await;
    assert_error(
        app.refresh(&first.refresh).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_reused",
    )
    .await;
    assert_error(
        app.refresh(&third.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
}}

backends! {
    async fn refresh_rereads_the_user() {
    let app = TestApp::spawn().await;
    let (email, body) = app.new_user().await;
    let tokens = Tokens::of(&body["tokens"]);
    app.sql(&format!(
        r#"UPDATE users SET roles = '["user","editor"]', name = 'Renamed' WHERE email = '{email}'"#
    ))
    .await;
    let next = pair(&app, &tokens.refresh).await;
    assert_eq!(next.claims()["roles"], json!(["user", "editor"]));
    assert_eq!(next.claims()["name"], "Renamed");
    app.sql(&format!("UPDATE users SET disabled = true WHERE email = '{email}'"))
        .await;
    assert_error(
        app.refresh(&next.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
}}

backends! {
    async fn missing_unknown_and_malformed_refresh_tokens() {
    let app = TestApp::spawn().await;
    let url = app.url("/api/auth/refresh");
    assert_error(
        app.client.post(&url).send().await.expect("request"),
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert_error(
        app.post_json("/api/auth/refresh", &json!({})).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert_error(
        app.post_json("/api/auth/refresh", &json!({"refresh_token": null}))
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert_error(
        app.refresh("not-a-token").await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert_error(
        app.post_json("/api/auth/refresh", &json!({"refresh_token": 42}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    let response = app
        .client
        .post(&url)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .expect("request");
    assert_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
}}

backends! {
    async fn token_and_session_lifetimes() {
    for setting in [
        "REFRESH_TOKEN_EXPIRATION",
        "SESSION_IDLE_TIMEOUT",
        "SESSION_MAX_LIFETIME",
    ] {
        let app = TestApp::spawn_with(&[(setting, "1s"), ("JWT_EXPIRATION", "1s")]).await;
        let (_, body) = app.new_user().await;
        let tokens = Tokens::of(&body["tokens"]);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_error(
            app.refresh(&tokens.refresh).await,
            StatusCode::UNAUTHORIZED,
            "invalid_refresh_token",
        )
        .await;
    }
}}

backends! {
    async fn refresh_tokens_and_grace_pairs_are_never_stored_in_clear() {
    let app = TestApp::spawn().await;
    let (_, body) = app.new_user().await;
    let first = Tokens::of(&body["tokens"]);
    let second = pair(&app, &first.refresh).await;
    let third = pair(&app, &second.refresh).await;
    let stored = app.stored().await;
    for token in [
        &first.refresh,
        &second.refresh,
        &third.refresh,
        &second.access,
        &third.access,
    ] {
        assert!(
            !stored.contains(token.as_str()),
            "a token is stored in clear"
        );
    }
}}
