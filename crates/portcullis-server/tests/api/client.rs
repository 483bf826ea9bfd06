//! `portcullis-client` against the real server: typed calls, and the
//! authenticated wrapper's single-flight refresh.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_client::{Authenticated, Client};

use crate::helpers::{PASSWORD, TestApp};

/// Requests to `route` the server counted, from its own metrics.
async fn served(app: &TestApp, route: &str) -> f64 {
    let text = app
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("metrics");
    crate::helpers::sample(&text, "portcullis_http_requests_total", &[("route", route)])
        .unwrap_or(0.0)
}

#[tokio::test]
async fn typed_calls_cover_the_user_endpoints() {
    let app = TestApp::spawn().await;
    let client = Client::new(&app.address).expect("client");
    let session = client
        .register("typed@example.com", PASSWORD, "Typed")
        .await
        .expect("register");
    assert_eq!(session.user.email, "typed@example.com");
    let login = client
        .login("typed@example.com", PASSWORD, Some("laptop"))
        .await
        .expect("login");
    let access = &login.tokens.access_token;
    assert_eq!(client.me(access).await.expect("me").id, session.user.id);
    assert_eq!(
        client.profile(access).await.expect("profile").user_id,
        session.user.id
    );
    assert!(
        client
            .data(access)
            .await
            .expect("data")
            .message
            .contains("Typed")
    );
    let sessions = client.sessions(access).await.expect("sessions");
    assert_eq!(sessions.len(), 2);
    let other = sessions
        .iter()
        .find(|s| !s.current)
        .expect("the register session");
    client
        .delete_session(access, &other.id)
        .await
        .expect("delete session");
    assert!(
        client
            .jwks()
            .await
            .expect("jwks")
            .keys
            .iter()
            .all(|k| k.kid.is_some())
    );
    let discovery = client.openid_configuration().await.expect("discovery");
    assert!(discovery.jwks_uri.ends_with("/.well-known/jwks.json"));
    let refreshed = client
        .refresh(&login.tokens.refresh_token)
        .await
        .expect("refresh");
    let retry = client
        .refresh(&login.tokens.refresh_token)
        .await
        .expect("retry");
    assert_eq!(
        retry.refresh_token, refreshed.refresh_token,
        "a retry inside the grace window gets the same pair"
    );
    let wrong = client
        .login("typed@example.com", "not the password", None)
        .await;
    assert_eq!(
        wrong
            .err()
            .and_then(|e| e.code().map(str::to_owned))
            .as_deref(),
        Some("invalid_credentials")
    );
    client
        .logout(&refreshed.refresh_token)
        .await
        .expect("logout");
    let after = client.me(&refreshed.access_token).await;
    assert_eq!(
        after
            .err()
            .and_then(|e| e.code().map(str::to_owned))
            .as_deref(),
        Some("token_revoked")
    );
}

/// Fifty callers meet an access token about to expire: one refresh request
/// reaches the server, every caller gets through, and the hook sees the
/// rotated refresh token.
#[tokio::test]
async fn fifty_concurrent_callers_share_one_refresh() {
    let app = TestApp::spawn_with(&[("JWT_EXPIRATION", "3s")]).await;
    let client = Client::new(&app.address).expect("client");
    let session = client
        .register("fifty@example.com", PASSWORD, "Fifty")
        .await
        .expect("register");
    let stored: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = stored.clone();
    let authed = Arc::new(
        Authenticated::new(client, session.tokens.clone()).on_refresh_token(move |token| {
            sink.lock().expect("lock").push(token.to_owned());
        }),
    );
    // Past the refresh point (a fifth of the lifetime before expiry).
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let before = served(&app, "/api/auth/refresh").await;
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let authed = authed.clone();
            tokio::spawn(async move { authed.get("/api/profile").await.map(|r| r.status()) })
        })
        .collect();
    for caller in callers {
        let status = caller.await.expect("join").expect("request");
        assert_eq!(status, reqwest::StatusCode::OK);
    }
    assert_eq!(served(&app, "/api/auth/refresh").await - before, 1.0);
    let stored = stored.lock().expect("lock").clone();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], session.tokens.refresh_token);
    assert_eq!(authed.refresh_token(), stored[0]);
}

/// A token the client believes fresh but the server finds expired (the
/// client's clock behind the server's): one refresh, one retry, success.
#[tokio::test]
async fn token_expired_refreshes_once_and_retries() {
    let app = TestApp::spawn_hs256().await;
    let client = Client::new(&app.address).expect("client");
    let session = client
        .register("late@example.com", PASSWORD, "Late")
        .await
        .expect("register");
    // The session's own access token, as it looks an hour after expiry.
    let mut claims =
        crate::helpers::Tokens::of(&serde_json::to_value(&session.tokens).expect("json")).claims();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    claims["iat"] = serde_json::json!(now - 7200);
    claims["exp"] = serde_json::json!(now - 3600);
    let mut believed = session.tokens.clone();
    believed.access_token = crate::helpers::mint_hs256(&claims);
    let authed = Authenticated::new(client, believed);
    let before = served(&app, "/api/auth/refresh").await;
    let profile = authed
        .get("/api/profile")
        .await
        .expect("profile after a refresh");
    assert_eq!(profile.status(), reqwest::StatusCode::OK);
    assert_eq!(served(&app, "/api/auth/refresh").await - before, 1.0);
    // Any other error is handed back, not retried.
    authed.logout().await.expect("logout");
    let error = authed.get("/api/profile").await.expect_err("revoked");
    assert_eq!(error.code(), Some("token_revoked"));
}
