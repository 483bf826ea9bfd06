//! The revocations feed, persistence across restarts, and retention.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backends;
use crate::helpers::{TestApp, Tokens, assert_error, eventually};

async fn feed(app: &TestApp, query: &str) -> Value {
    let response = app
        .get(&format!("/.well-known/revocations{query}"), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.expect("json")
}

backends! {
    async fn a_long_polling_reader_learns_of_a_logout_within_a_second() {
    let app = TestApp::spawn().await;
    let (_, body) = app.new_user().await;
    let tokens = Tokens::of(&body["tokens"]);
    let snapshot = feed(&app, "").await;
    assert_eq!(snapshot["reset"], false);
    let cursor = snapshot["cursor"].as_str().expect("cursor").to_owned();

    let client = app.client.clone();
    let url = app.url(&format!("/.well-known/revocations?since={cursor}&wait=20"));
    let reader = tokio::spawn(async move {
        let body: Value = client
            .get(url)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        (Instant::now(), body)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!reader.is_finished(), "the long-poll must wait for news");
    assert_eq!(
        app.post_auth("/api/auth/logout", &tokens.access)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let logged_out = Instant::now();
    let (answered, body) = tokio::time::timeout(Duration::from_secs(1), reader)
        .await
        .expect("the feed answered within a second")
        .expect("join");
    assert!(answered.duration_since(logged_out) < Duration::from_secs(1));
    let sid = tokens.claims()["sid"].clone();
    let entries = body["revoked"].as_array().expect("revoked");
    assert!(
        entries.iter().any(|e| e["sid"] == sid && e["exp"].is_i64()),
        "{body}"
    );
    assert_ne!(body["cursor"], cursor.as_str());
}}

backends! {
    async fn snapshots_cursors_paging_and_entry_kinds() {
    let app = TestApp::spawn().await;
    let (email, body) = app.new_user().await;
    let first = Tokens::of(&body["tokens"]);
    let second = app.session_of(&email).await;
    let third = app.session_of(&email).await;
    app.post_auth("/api/auth/logout", &first.access).await;
    app.post_auth("/api/auth/logout", &second.access).await;
    app.post_auth("/api/auth/logout-all", &third.access).await;
    // Entries written by this instance are published once confirmed: poll.
    eventually(Duration::from_secs(3), || async {
        feed(&app, "").await["revoked"]
            .as_array()
            .is_some_and(|r| r.len() == 3)
    })
    .await;
    let all = feed(&app, "").await;
    let entries = all["revoked"].as_array().expect("revoked").clone();
    assert_eq!(entries[0]["sid"], first.claims()["sid"]);
    assert_eq!(entries[1]["sid"], second.claims()["sid"]);
    assert_eq!(entries[2]["sub"], first.claims()["sub"]);
    assert!(
        entries[2]["before"].as_i64().expect("before")
            > first.claims()["iat"].as_i64().expect("iat")
    );
    assert_eq!(all["more"], false);

    // Paging.
    let page = feed(&app, "?limit=1").await;
    assert_eq!(page["revoked"].as_array().expect("page").len(), 1);
    assert_eq!(page["more"], true);
    let rest = feed(
        &app,
        &format!(
            "?since={}&limit=10",
            page["cursor"].as_str().expect("cursor")
        ),
    )
    .await;
    assert_eq!(rest["revoked"].as_array().expect("rest").len(), 2);
    assert_eq!(rest["more"], false);
    // Up to date: nothing new, same cursor.
    let idle = feed(
        &app,
        &format!("?since={}", rest["cursor"].as_str().expect("cursor")),
    )
    .await;
    assert_eq!(idle["revoked"], json!([]));
    assert_eq!(idle["cursor"], rest["cursor"]);
    // Unknown cursor: a snapshot with reset.
    let reset = feed(&app, "?since=bogus-17").await;
    assert_eq!(reset["reset"], true);
    assert_eq!(reset["revoked"].as_array().expect("snapshot").len(), 3);
    // Out-of-range limits and waits are clamped, not refused.
    assert_eq!(
        feed(&app, "?limit=0").await["revoked"]
            .as_array()
            .expect("one")
            .len(),
        1
    );
    let start = Instant::now();
    feed(
        &app,
        &format!(
            "?since={}&wait=-5&limit=99999",
            rest["cursor"].as_str().expect("cursor")
        ),
    )
    .await;
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_error(
        app.get("/.well-known/revocations?limit=ten", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
}}

#[tokio::test]
async fn a_long_poll_may_outlast_the_request_timeout() {
    let app = TestApp::spawn_with(&[("REQUEST_TIMEOUT", "1s")]).await;
    let cursor = feed(&app, "").await["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let started = Instant::now();
    let body = feed(&app, &format!("?since={cursor}&wait=2")).await;
    assert!(started.elapsed() >= Duration::from_secs(2), "{body}");
    assert_eq!(body["revoked"], json!([]));
    // Every other route keeps the deadline (edge.rs tests its 503).
}

backends! {
    async fn at_most_eight_long_polls_per_address() {
    let app = TestApp::spawn().await;
    let cursor = feed(&app, "").await["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let url = app.url(&format!("/.well-known/revocations?since={cursor}&wait=5"));
    let polls: Vec<_> = (0..8)
        .map(|_| {
            let client = app.client.clone();
            let url = url.clone();
            tokio::spawn(async move { client.get(url).send().await.expect("request").status() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_error(
        app.get(
            &format!("/.well-known/revocations?since={cursor}&wait=5"),
            None,
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    // A plain poll (no wait) is not a long-poll.
    assert_eq!(
        app.get(&format!("/.well-known/revocations?since={cursor}"), None)
            .await
            .status(),
        StatusCode::OK
    );
    for poll in polls {
        assert_eq!(poll.await.expect("join"), StatusCode::OK);
    }
}}

backends! {
    async fn the_feed_can_require_a_token() {
    let app = TestApp::spawn_with(&[("REVOCATIONS_TOKEN", "feed-secret-123")]).await;
    assert_error(
        app.get("/.well-known/revocations", None).await,
        StatusCode::UNAUTHORIZED,
        "missing_token",
    )
    .await;
    assert_error(
        app.get("/.well-known/revocations", Some("wrong")).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_eq!(
        app.get("/.well-known/revocations", Some("feed-secret-123"))
            .await
            .status(),
        StatusCode::OK
    );
}}

backends! {
    async fn revocations_sessions_and_keys_survive_a_restart() {
    let app = TestApp::spawn().await;
    let (email, body) = app.new_user().await;
    let revoked = Tokens::of(&body["tokens"]);
    let kept = app.session_of(&email).await;
    app.post_auth("/api/auth/logout", &revoked.access).await;
    let jwks: Value = app
        .get("/.well-known/jwks.json", None)
        .await
        .json()
        .await
        .expect("json");
    let app = app.restart().await;
    assert_error(
        app.get("/api/profile", Some(&revoked.access)).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    assert_eq!(
        app.get("/api/profile", Some(&kept.access)).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.refresh(&kept.refresh).await.status(), StatusCode::OK);
    assert_eq!(
        app.get("/.well-known/jwks.json", None)
            .await
            .json::<Value>()
            .await
            .expect("json"),
        jwks
    );
    let snapshot = feed(&app, "").await;
    assert!(
        snapshot["revoked"]
            .as_array()
            .expect("revoked")
            .iter()
            .any(|e| e["sid"] == revoked.claims()["sid"])
    );
}}

backends! {
    async fn retention_keeps_the_database_bounded() {
    let app = TestApp::spawn_with(&[("RETENTION_INTERVAL", "1s"), ("REFRESH_GRACE", "1s")]).await;
    let (email, _) = app.new_user().await;
    let app = &app;
    let count = |table: &'static str| async move {
        app.scalar::<i64>(&format!("SELECT COUNT(*) FROM {table}")).await
    };
    for round in 0..3 {
        for _ in 0..5 {
            let mut tokens = app.session_of(&email).await;
            for _ in 0..10 {
                let response = app.refresh(&tokens.refresh).await;
                tokens = Tokens::of(&response.json::<Value>().await.expect("json"));
            }
            app.post_auth("/api/auth/logout", &tokens.access).await;
        }
        // 50 rotations this round; ended sessions and their hashes go away,
        // and so do the pairs kept for replays once their window has passed.
        eventually(Duration::from_secs(10), || async {
            count("refresh_tokens").await <= 1
                && count("sessions").await <= 1
                && count("refresh_grace").await == 0
        })
        .await;
        assert!(
            count("revocations").await <= 5 * (round + 1),
            "revocations are kept only while they matter"
        );
    }
}}
