//! Sessions, logout in every form, logout-all and password change.

use portcullis_token::{Audience, Claims, SigningKey};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backends;
use crate::helpers::{HS256_SECRET, PASSWORD, TestApp, Tokens, assert_error};

async fn sessions(app: &TestApp, access: &str) -> Vec<Value> {
    let response = app.get("/api/auth/sessions", Some(access)).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Vec<Value>>().await.expect("json")
}

async fn delete_session(app: &TestApp, access: &str, id: &str) -> reqwest::Response {
    app.client
        .delete(app.url(&format!("/api/auth/sessions/{id}")))
        .bearer_auth(access)
        .send()
        .await
        .expect("request")
}

async fn login_on(app: &TestApp, email: &str, device: &str) -> Tokens {
    let response = app
        .client
        .post(app.url("/api/auth/login"))
        .header("user-agent", format!("agent-{device}"))
        .json(&json!({"email": email, "password": PASSWORD, "device_name": device}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    Tokens::of(&response.json::<Value>().await.expect("json")["tokens"])
}

backends! {
    async fn sessions_are_listed_with_the_current_one_marked_and_can_be_ended() {
    let app = TestApp::spawn().await;
    let (email, _) = app.new_user().await;
    let phone = login_on(&app, &email, "phone").await;
    let laptop = login_on(&app, &email, "laptop").await;
    let listed = sessions(&app, &laptop.access).await;
    assert_eq!(listed.len(), 3, "register, phone, laptop: {listed:?}");
    let current: Vec<&Value> = listed.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["device_name"], "laptop");
    assert_eq!(current[0]["id"], laptop.claims()["sid"]);
    assert_eq!(current[0]["user_agent"], "agent-laptop");
    assert_eq!(current[0]["ip"], "127.0.0.1");
    for field in ["created_at", "last_used_at"] {
        assert!(current[0][field].is_string());
    }

    let phone_sid = phone.claims()["sid"].as_str().expect("sid").to_owned();
    let response = delete_session(&app, &laptop.access, &phone_sid).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.get("/api/profile", Some(&phone.access)).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    assert_error(
        app.refresh(&phone.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert_eq!(sessions(&app, &laptop.access).await.len(), 2);

    // Unknown, malformed, already ended, or another user's: 404.
    let (_, stranger) = app.new_user().await;
    let stranger_sid = Tokens::of(&stranger["tokens"]).claims()["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    for id in [
        uuid::Uuid::new_v4().to_string(),
        "not-a-uuid".into(),
        phone_sid,
        stranger_sid,
    ] {
        let response = delete_session(&app, &laptop.access, &id).await;
        assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    // Ending the current session is a logout.
    let own = laptop.claims()["sid"].as_str().expect("sid").to_owned();
    let response = delete_session(&app, &laptop.access, &own).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.get("/api/profile", Some(&laptop.access)).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
}}

backends! {
    async fn logout_revokes_the_session_at_once() {
    let app = TestApp::spawn().await;
    let (email, body) = app.new_user().await;
    let tokens = Tokens::of(&body["tokens"]);
    let other = app.session_of(&email).await;
    let response = app.post_auth("/api/auth/logout", &tokens.access).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.get("/api/profile", Some(&tokens.access)).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    assert_error(
        app.refresh(&tokens.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert_eq!(
        app.get("/api/profile", Some(&other.access)).await.status(),
        StatusCode::OK
    );
    // Logging out again is harmless.
    assert_eq!(
        app.post_auth("/api/auth/logout", &tokens.access)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
}}

backends! {
    async fn logout_with_the_refresh_token_alone() {
    let app = TestApp::spawn().await;
    let (_, body) = app.new_user().await;
    let tokens = Tokens::of(&body["tokens"]);
    let response = app
        .post_json(
            "/api/auth/logout",
            &json!({"refresh_token": tokens.refresh}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.get("/api/profile", Some(&tokens.access)).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    assert_error(
        app.post_json("/api/auth/logout", &json!({"refresh_token": "unknown"}))
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert_error(
        app.client
            .post(app.url("/api/auth/logout"))
            .send()
            .await
            .expect("request"),
        StatusCode::UNAUTHORIZED,
        "missing_token",
    )
    .await;
}}

backends! {
    async fn logout_with_an_expired_access_token() {
    let app = TestApp::spawn_hs256().await;
    let (_, body) = app.new_user().await;
    let tokens = Tokens::of(&body["tokens"]);
    let claims = tokens.claims();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // The same session's token, expired beyond the leeway.
    let expired = SigningKey::from_secret(HS256_SECRET.as_bytes())
        .expect("secret")
        .sign(&Claims {
            iss: "portcullis".into(),
            sub: claims["sub"].as_str().expect("sub").into(),
            aud: Audience::from("portcullis"),
            exp: now - 120,
            iat: now - 1020,
            nbf: Some(now - 1020),
            jti: uuid::Uuid::new_v4().to_string(),
            sid: claims["sid"].as_str().expect("sid").into(),
            email: String::new(),
            name: String::new(),
            roles: vec![],
        })
        .expect("sign");
    assert_error(
        app.get("/api/profile", Some(&expired)).await,
        StatusCode::UNAUTHORIZED,
        "token_expired",
    )
    .await;
    assert_eq!(
        app.post_auth("/api/auth/logout", &expired).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.get("/api/profile", Some(&tokens.access)).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    assert_error(
        app.refresh(&tokens.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    // A forged token is no credential for logout.
    assert_error(
        app.post_auth("/api/auth/logout", "a.b.c").await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}}

backends! {
    async fn logout_all_revokes_every_session_but_a_new_login_works_at_once() {
    let app = TestApp::spawn().await;
    let (email, body) = app.new_user().await;
    let first = Tokens::of(&body["tokens"]);
    let second = app.session_of(&email).await;
    assert_eq!(
        app.post_auth("/api/auth/logout-all", &second.access)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    for tokens in [&first, &second] {
        assert_error(
            app.get("/api/profile", Some(&tokens.access)).await,
            StatusCode::UNAUTHORIZED,
            "token_revoked",
        )
        .await;
        assert_error(
            app.refresh(&tokens.refresh).await,
            StatusCode::UNAUTHORIZED,
            "invalid_refresh_token",
        )
        .await;
    }
    // In the same second as the logout-all: the new token is not covered.
    let fresh = app.session_of(&email).await;
    assert_eq!(
        app.get("/api/profile", Some(&fresh.access)).await.status(),
        StatusCode::OK
    );
    assert_eq!(sessions(&app, &fresh.access).await.len(), 1);
}}

backends! {
    async fn password_change_revokes_the_other_sessions() {
    let app = TestApp::spawn().await;
    let (email, body) = app.new_user().await;
    let current = Tokens::of(&body["tokens"]);
    let other = app.session_of(&email).await;
    let change = |current_password: &str, new_password: &str| {
        app.client
            .post(app.url("/api/auth/password"))
            .bearer_auth(&current.access)
            .json(&json!({"current_password": current_password, "new_password": new_password}))
            .send()
    };
    assert_error(
        change("wrong password", "a brand new passphrase")
            .await
            .expect("request"),
        StatusCode::FORBIDDEN,
        "invalid_credentials",
    )
    .await;
    assert_error(
        change(PASSWORD, "short").await.expect("request"),
        StatusCode::BAD_REQUEST,
        "weak_password",
    )
    .await;
    assert_eq!(
        change(PASSWORD, "a brand new passphrase")
            .await
            .expect("request")
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.get("/api/profile", Some(&other.access)).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    assert_error(
        app.refresh(&other.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert_eq!(
        app.get("/api/profile", Some(&current.access))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(app.refresh(&current.refresh).await.status(), StatusCode::OK);
    assert_error(
        app.login(&email, PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        app.login(&email, "a brand new passphrase").await.status(),
        StatusCode::OK
    );
}}
