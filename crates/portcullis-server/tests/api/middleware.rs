//! `portcullis-axum` in a resource server of the test's own, against the
//! real `portcullis`: logouts reach it, keys rotate and are revoked under
//! it without a restart, and it fails closed when the feed goes silent.

use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::get;
use portcullis_axum::{AuthLayer, Claims, RequireRole, Verifier};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, Tokens, assert_error, eventually};

portcullis_axum::role!(Admin = "admin");

async fn me(claims: Claims) -> Json<Value> {
    Json(json!({"sub": claims.sub, "email": claims.email}))
}

async fn admin_only(admin: RequireRole<Admin>) -> Json<Value> {
    Json(json!({"admin": admin.email}))
}

/// A resource server protected by the layer; its base URL.
async fn resource_server(verifier: Verifier) -> String {
    let router = axum::Router::new()
        .route("/me", get(me))
        .route("/admin", get(admin_only))
        .layer(AuthLayer::new(verifier));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

fn following(app: &TestApp, max_staleness: Duration) -> Verifier {
    Verifier::builder()
        .jwks_url(app.url("/.well-known/jwks.json"))
        .revocations_url(Some(app.url("/.well-known/revocations")))
        .max_staleness(max_staleness)
        .start()
        .expect("verifier")
}

async fn status(client: &reqwest::Client, url: &str, token: Option<&str>) -> StatusCode {
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request").status()
}

#[tokio::test]
async fn a_logout_is_refused_by_the_service_within_a_second() {
    let app = TestApp::spawn().await;
    let (email, body) = app.new_user().await;
    let tokens = Tokens::of(&body["tokens"]);
    let verifier = following(&app, Duration::from_secs(60));
    let service = resource_server(verifier.clone()).await;
    let me_url = format!("{service}/me");
    eventually(Duration::from_secs(10), || async {
        status(&app.client, &me_url, Some(&tokens.access)).await == StatusCode::OK
    })
    .await;
    let seen: Value = app
        .client
        .get(&me_url)
        .bearer_auth(&tokens.access)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(seen["email"], email.as_str());

    let missing = app.client.get(&me_url).send().await.expect("request");
    assert!(missing.headers().contains_key("www-authenticate"));
    assert_error(missing, StatusCode::UNAUTHORIZED, "missing_token").await;
    let forged = app
        .client
        .get(&me_url)
        .bearer_auth(format!("{}x", tokens.access))
        .send()
        .await
        .expect("request");
    assert_error(forged, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let admin = app
        .client
        .get(format!("{service}/admin"))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .expect("request");
    assert_error(admin, StatusCode::FORBIDDEN, "forbidden").await;
    let root = app.admin().await;
    assert_eq!(
        status(&app.client, &format!("{service}/admin"), Some(&root.access)).await,
        StatusCode::OK
    );

    app.post_auth("/api/auth/logout", &tokens.access).await;
    let started = Instant::now();
    eventually(Duration::from_secs(1), || async {
        status(&app.client, &me_url, Some(&tokens.access)).await == StatusCode::UNAUTHORIZED
    })
    .await;
    eprintln!("logout reached the service after {:?}", started.elapsed());
    let refused = app
        .client
        .get(&me_url)
        .bearer_auth(&tokens.access)
        .send()
        .await
        .expect("request");
    assert_error(refused, StatusCode::UNAUTHORIZED, "token_revoked").await;
    assert!(verifier.revoked_entries() >= 1);
}

#[tokio::test]
async fn keys_rotate_and_are_revoked_under_a_running_service() {
    let app = TestApp::spawn().await;
    let (_, body) = app.new_user().await;
    let old = Tokens::of(&body["tokens"]);
    let old_kid = crate::helpers::kid_of(&old.access);
    let verifier = following(&app, Duration::from_secs(60));
    let service = resource_server(verifier).await;
    let me_url = format!("{service}/me");
    eventually(Duration::from_secs(10), || async {
        status(&app.client, &me_url, Some(&old.access)).await == StatusCode::OK
    })
    .await;

    // A new key signs at once: its tokens are accepted (an unknown kid
    // refetches the JWKS), the old key's still are.
    let root = app.admin().await;
    app.rotate_key_now(&root.access).await;
    let (_, body) = app.new_user().await;
    let new = Tokens::of(&body["tokens"]);
    assert_ne!(crate::helpers::kid_of(&new.access), old_kid);
    eventually(Duration::from_secs(3), || async {
        status(&app.client, &me_url, Some(&new.access)).await == StatusCode::OK
    })
    .await;
    assert_eq!(
        status(&app.client, &me_url, Some(&old.access)).await,
        StatusCode::OK
    );

    // The old key is revoked: its tokens stop, cached or not.
    app.revoke_key(&root.access, &old_kid).await;
    eventually(Duration::from_secs(3), || async {
        status(&app.client, &me_url, Some(&old.access)).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert_eq!(
        status(&app.client, &me_url, Some(&new.access)).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn it_fails_closed_before_loading_and_when_the_feed_goes_silent() {
    // Nothing listens there: never ready.
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let unreachable = Verifier::builder()
        .jwks_url(format!("http://{nowhere}/.well-known/jwks.json"))
        .revocations_url(Some(format!("http://{nowhere}/.well-known/revocations")))
        .start()
        .expect("verifier");
    let service = resource_server(unreachable).await;
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{service}/me"))
        .bearer_auth("a.b.c")
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["retry-after"], "1");
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;

    let mut app = TestApp::spawn().await;
    let (_, body) = app.new_user().await;
    let tokens = Tokens::of(&body["tokens"]);
    let verifier = following(&app, Duration::from_secs(2));
    let service = resource_server(verifier.clone()).await;
    let me_url = format!("{service}/me");
    eventually(Duration::from_secs(10), || async {
        status(&client, &me_url, Some(&tokens.access)).await == StatusCode::OK
    })
    .await;
    app.terminate();
    // Cached keys and token are still good, but revocations may be missed:
    // past max_staleness every request is refused.
    let silent = eventually(Duration::from_secs(6), || async {
        status(&client, &me_url, Some(&tokens.access)).await == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    eprintln!("refused {silent:?} after the server stopped");
    assert!(
        verifier
            .staleness()
            .is_some_and(|s| s > Duration::from_secs(2))
    );
}
