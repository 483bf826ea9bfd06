use portcullis_token::{Audience, Claims, SigningKey};
use reqwest::StatusCode;
use serde_json::json;

use crate::backends;
use crate::helpers::{HS256_SECRET, TestApp, assert_error};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A token signed with the HS256 secret an app was started with.
fn mint(sub: &str, exp: i64) -> String {
    let key = SigningKey::from_secret(HS256_SECRET.as_bytes()).expect("secret");
    key.sign(&Claims {
        iss: "portcullis".into(),
        sub: sub.into(),
        aud: Audience::from("portcullis"),
        exp,
        iat: exp - 900,
        nbf: Some(exp - 900),
        jti: uuid::Uuid::new_v4().to_string(),
        sid: uuid::Uuid::new_v4().to_string(),
        email: "ghost@example.com".into(),
        name: "Ghost".into(),
        roles: vec!["user".into()],
    })
    .expect("sign")
}

backends! {
    async fn profile_data_and_me_with_a_valid_token() {
    let app = TestApp::spawn().await;
    let (email, body) = app.new_user().await;
    let token = body["tokens"]["access_token"].as_str().expect("token");
    let id = body["user"]["id"].as_str().expect("id");

    let profile = app.get("/api/profile", Some(token)).await;
    assert_eq!(profile.status(), StatusCode::OK);
    let profile: serde_json::Value = profile.json().await.expect("json");
    assert_eq!(profile["user_id"], id);
    assert_eq!(profile["email"], email);
    assert!(profile["message"].is_string());

    let data: serde_json::Value = app
        .get("/api/data", Some(token))
        .await
        .json()
        .await
        .expect("json");
    assert!(
        data["message"]
            .as_str()
            .expect("message")
            .contains("Test User")
    );

    let me = app.get("/api/auth/me", Some(token)).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(
        me.json::<serde_json::Value>().await.expect("json"),
        body["user"]
    );
}}

backends! {
    async fn unusable_credentials_get_the_right_401() {
    let app = TestApp::spawn().await;
    let (_, body) = app.new_user().await;
    let refresh = body["tokens"]["refresh_token"].as_str().expect("refresh");
    let access = body["tokens"]["access_token"].as_str().expect("access");
    for path in ["/api/profile", "/api/data", "/api/auth/me"] {
        assert_error(
            app.get(path, None).await,
            StatusCode::UNAUTHORIZED,
            "missing_token",
        )
        .await;
        let cases: Vec<(&str, String, &str)> = vec![
            ("empty header", String::new(), "missing_token"),
            ("basic scheme", "Basic YWRhOnB3".into(), "invalid_token"),
            ("bearer with nothing", "Bearer".into(), "invalid_token"),
            ("bearer with spaces", "Bearer    ".into(), "invalid_token"),
            ("garbage", "Bearer not-a-jwt".into(), "invalid_token"),
            (
                "refresh token as access token",
                format!("Bearer {refresh}"),
                "invalid_token",
            ),
            (
                "over 8 KiB",
                format!("Bearer {}", "a".repeat(9000)),
                "invalid_token",
            ),
            ("tampered", format!("Bearer {}x", access), "invalid_token"),
        ];
        for (name, header, code) in cases {
            let response = app
                .client
                .get(app.url(path))
                .header("authorization", header)
                .send()
                .await
                .expect("request");
            let got = assert_error(response, StatusCode::UNAUTHORIZED, code).await;
            assert_eq!(got["code"], code, "{path}: {name}");
        }
        // The scheme is case-insensitive (RFC 7235).
        let lower = app
            .client
            .get(app.url(path))
            .header("authorization", format!("bearer {access}"))
            .send()
            .await
            .expect("request");
        assert_eq!(lower.status(), StatusCode::OK, "{path}");
    }
}}

backends! {
    async fn expired_and_foreign_tokens() {
    let app = TestApp::spawn_hs256().await;
    let (_, body) = app.new_user().await;
    let id = body["user"]["id"].as_str().expect("id");
    // Expired beyond the 60 s leeway.
    let expired = mint(id, now() - 120);
    assert_error(
        app.get("/api/profile", Some(&expired)).await,
        StatusCode::UNAUTHORIZED,
        "token_expired",
    )
    .await;
    // Validly signed for a user that never existed: routes that read the user say invalid_token.
    let ghost = mint(&uuid::Uuid::new_v4().to_string(), now() + 600);
    assert_eq!(
        app.get("/api/profile", Some(&ghost)).await.status(),
        StatusCode::OK
    );
    assert_error(
        app.get("/api/auth/me", Some(&ghost)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    // A token from another issuer's secret.
    let other = SigningKey::from_secret(b"another-secret-another-secret-another-secret")
        .expect("secret")
        .sign(&Claims {
            iss: "portcullis".into(),
            sub: id.into(),
            aud: Audience::from("portcullis"),
            exp: now() + 600,
            iat: now(),
            nbf: None,
            jti: "j".into(),
            sid: "s".into(),
            email: String::new(),
            name: String::new(),
            roles: vec![],
        })
        .expect("sign");
    assert_error(
        app.get("/api/profile", Some(&other)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}}

backends! {
    async fn a_disabled_users_token_is_revoked_where_the_user_is_read() {
    let app = TestApp::spawn().await;
    let (email, body) = app.new_user().await;
    let token = body["tokens"]["access_token"].as_str().expect("token");
    app.sql(&format!("UPDATE users SET disabled = true WHERE email = '{email}'")).await;
    assert_error(
        app.get("/api/auth/me", Some(token)).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    let _ = json!({});
}}
