use reqwest::StatusCode;
use serde_json::json;

use crate::backends;
use crate::helpers::{PASSWORD, TestApp, assert_error};

backends! {
    async fn register_returns_the_user_and_a_token_pair() {
    let app = TestApp::spawn().await;
    let response = app
        .register("  Ada@Example.COM ", PASSWORD, "  Ada Lovelace ")
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.expect("json");
    let user = &body["user"];
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["roles"], json!(["user"]));
    assert_eq!(user["email_verified"], false);
    assert!(uuid::Uuid::parse_str(user["id"].as_str().expect("id")).is_ok());
    assert!(
        time::OffsetDateTime::parse(
            user["created_at"].as_str().expect("created_at"),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );
    let tokens = &body["tokens"];
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let refresh = tokens["refresh_token"].as_str().expect("refresh token");
    assert_eq!(refresh.len(), 43, "256 bits, URL-safe base64");
    assert!(!refresh.contains('.'), "the refresh token is not a JWT");
    // The access token works at once.
    let access = tokens["access_token"].as_str().expect("access token");
    let me = app.get("/api/auth/me", Some(access)).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(
        me.json::<serde_json::Value>().await.expect("json")["email"],
        "ada@example.com"
    );
}}

backends! {
    async fn a_taken_email_is_a_conflict_whatever_its_case() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.register("bob@example.com", PASSWORD, "Bob")
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_error(
        app.register("BOB@example.com ", PASSWORD, "Bob 2").await,
        StatusCode::CONFLICT,
        "user_exists",
    )
    .await;
}}

backends! {
    async fn invalid_input_is_400_with_the_right_code() {
    let app = TestApp::spawn().await;
    let long_local = format!("{}@example.com", "a".repeat(65));
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "no at sign",
            json!({"email": "ada.example.com", "password": PASSWORD, "name": "Ada"}),
            "invalid_request",
        ),
        (
            "two at signs",
            json!({"email": "a@b@example.com", "password": PASSWORD, "name": "Ada"}),
            "invalid_request",
        ),
        (
            "no dot in domain",
            json!({"email": "ada@localhost", "password": PASSWORD, "name": "Ada"}),
            "invalid_request",
        ),
        (
            "whitespace inside",
            json!({"email": "a da@example.com", "password": PASSWORD, "name": "Ada"}),
            "invalid_request",
        ),
        (
            "NUL in email",
            json!({"email": "ada\u{0}@example.com", "password": PASSWORD, "name": "Ada"}),
            "invalid_request",
        ),
        (
            "local part too long",
            json!({"email": long_local, "password": PASSWORD, "name": "Ada"}),
            "invalid_request",
        ),
        (
            "blank name",
            json!({"email": "ada@example.com", "password": PASSWORD, "name": "   "}),
            "invalid_request",
        ),
        (
            "control char in name",
            json!({"email": "ada@example.com", "password": PASSWORD, "name": "A\u{0}da"}),
            "invalid_request",
        ),
        (
            "name too long",
            json!({"email": "ada@example.com", "password": PASSWORD, "name": "n".repeat(101)}),
            "invalid_request",
        ),
        (
            "missing name",
            json!({"email": "ada@example.com", "password": PASSWORD}),
            "invalid_request",
        ),
        (
            "null name",
            json!({"email": "ada@example.com", "password": PASSWORD, "name": null}),
            "invalid_request",
        ),
        (
            "missing password",
            json!({"email": "ada@example.com", "name": "Ada"}),
            "invalid_request",
        ),
        (
            "number as email",
            json!({"email": 7, "password": PASSWORD, "name": "Ada"}),
            "invalid_request",
        ),
        (
            "short password",
            json!({"email": "ada@example.com", "password": "short", "name": "Ada"}),
            "weak_password",
        ),
        (
            "common password",
            json!({"email": "ada@example.com", "password": "Password123", "name": "Ada"}),
            "weak_password",
        ),
        (
            "129-character password",
            json!({"email": "ada@example.com", "password": "p".repeat(129), "name": "Ada"}),
            "weak_password",
        ),
    ];
    for (name, body, code) in cases {
        let response = app.post_json("/api/auth/register", &body).await;
        let got = assert_error(response, StatusCode::BAD_REQUEST, code).await;
        assert!(
            !got.to_string().contains(PASSWORD),
            "{name}: the password is echoed"
        );
    }
}}

backends! {
    async fn unicode_is_kept_and_passwords_count_scalar_values() {
    let app = TestApp::spawn().await;
    // Eight scalar values, sixteen bytes.
    let password = "пароль¡¿";
    let response = app
        .register("Élodie@Exemple.fr", password, "Élodie 🦀")
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["user"]["email"], "élodie@exemple.fr");
    assert_eq!(body["user"]["name"], "Élodie 🦀");
    assert_eq!(
        app.login("élodie@exemple.fr", password).await.status(),
        StatusCode::OK
    );
}}

backends! {
    async fn roles_and_verification_cannot_be_mass_assigned() {
    let app = TestApp::spawn().await;
    let response = app
        .post_json(
            "/api/auth/register",
            &json!({
                "email": "mallory@example.com", "password": PASSWORD, "name": "Mallory",
                "roles": ["admin"], "email_verified": true, "disabled": false,
                "id": "00000000-0000-0000-0000-000000000001", "created_at": "2000-01-01T00:00:00Z"
            }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["user"]["roles"], json!(["user"]));
    assert_eq!(body["user"]["email_verified"], false);
    assert_ne!(body["user"]["id"], "00000000-0000-0000-0000-000000000001");
    assert_ne!(body["user"]["created_at"], "2000-01-01T00:00:00Z");
}}

backends! {
    async fn closed_registration_and_allowed_domains() {
    let closed = TestApp::spawn_with(&[("REGISTRATION", "closed")]).await;
    assert_error(
        closed.register("ada@example.com", PASSWORD, "Ada").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    let domains =
        TestApp::spawn_with(&[("REGISTRATION_DOMAINS", "example.com, @corp.example")]).await;
    assert_eq!(
        domains
            .register("ada@example.com", PASSWORD, "Ada")
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        domains
            .register("bob@CORP.example", PASSWORD, "Bob")
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_error(
        domains.register("eve@evil.example", PASSWORD, "Eve").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}}
