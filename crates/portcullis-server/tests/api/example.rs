//! `examples/notes-service` against the real server, driven with
//! `portcullis-client`, as its README describes.

use std::time::Duration;

use portcullis_axum::Verifier;
use portcullis_client::{Authenticated, Client};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, eventually, kid_of};

async fn notes_service(portcullis: &str) -> String {
    let verifier = Verifier::builder()
        .discover(portcullis)
        .await
        .expect("discovery")
        .start()
        .expect("verifier");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let router = notes_service::router(verifier);
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

async fn notes(client: &reqwest::Client, url: &str, token: &str) -> StatusCode {
    client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
}

#[tokio::test]
async fn the_notes_service_follows_logouts_and_keys() {
    let app = TestApp::spawn().await;
    let service = notes_service(&app.address).await;
    let notes_url = format!("{service}/notes");
    let portcullis = Client::new(&app.address).expect("client");
    let ada = portcullis
        .register("ada@example.com", PASSWORD, "Ada")
        .await
        .expect("register");
    let old_kid = kid_of(&ada.tokens.access_token);
    let session = Authenticated::new(portcullis.clone(), ada.tokens.clone());
    eventually(Duration::from_secs(10), || async {
        notes(&app.client, &notes_url, &ada.tokens.access_token).await == StatusCode::OK
    })
    .await;

    // The service knows who is asking.
    let added = session
        .execute(|c| c.http().post(&notes_url).json(&json!({"text": "buy milk"})))
        .await
        .expect("add a note");
    assert_eq!(added.status(), StatusCode::CREATED);
    let mine: Value = session
        .execute(|c| c.http().get(&notes_url))
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(mine, json!([{"id": 1, "text": "buy milk"}]));
    let grace = portcullis
        .register("grace@example.com", PASSWORD, "Grace")
        .await
        .expect("register");
    let theirs: Value = app
        .client
        .get(&notes_url)
        .bearer_auth(&grace.tokens.access_token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(theirs, json!([]), "notes are per user");
    let stats = app
        .client
        .get(format!("{service}/admin/stats"))
        .bearer_auth(&grace.tokens.access_token)
        .send()
        .await
        .expect("stats");
    assert_eq!(stats.status(), StatusCode::FORBIDDEN);

    // Logout: refused within a second.
    let access = session.access_token().await.expect("token");
    session.logout().await.expect("logout");
    let took = eventually(Duration::from_secs(1), || async {
        notes(&app.client, &notes_url, &access).await == StatusCode::UNAUTHORIZED
    })
    .await;
    eprintln!("the notes service refused the logged-out token after {took:?}");

    // A new signing key: its tokens work without restarting the service.
    let root = app.admin().await;
    app.rotate_key_now(&root.access).await;
    let fresh = portcullis
        .login("ada@example.com", PASSWORD, None)
        .await
        .expect("login");
    assert_ne!(kid_of(&fresh.tokens.access_token), old_kid);
    eventually(Duration::from_secs(3), || async {
        notes(&app.client, &notes_url, &fresh.tokens.access_token).await == StatusCode::OK
    })
    .await;

    // The old key revoked: its tokens are refused.
    assert_eq!(
        notes(&app.client, &notes_url, &grace.tokens.access_token).await,
        StatusCode::OK
    );
    app.revoke_key(&root.access, &old_kid).await;
    eventually(Duration::from_secs(3), || async {
        notes(&app.client, &notes_url, &grace.tokens.access_token).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert_eq!(
        notes(&app.client, &notes_url, &fresh.tokens.access_token).await,
        StatusCode::OK
    );
}
