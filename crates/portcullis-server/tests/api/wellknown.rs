use base64::Engine;
use reqwest::StatusCode;

use crate::backends;
use crate::helpers::TestApp;

fn header_of(token: &str) -> serde_json::Value {
    let segment = token.split('.').next().expect("header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .expect("b64");
    serde_json::from_slice(&bytes).expect("json")
}

backends! {
    async fn jwks_publishes_the_signing_key_and_tokens_name_it() {
    let app = TestApp::spawn().await;
    let response = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let jwks: serde_json::Value = response.json().await.expect("json");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    assert!(key.get("d").is_none());

    let (_, body) = app.new_user().await;
    let header = header_of(body["tokens"]["access_token"].as_str().expect("token"));
    assert_eq!(header["kid"], key["kid"]);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");

    // A verifier holding only the JWKS accepts the token.
    let set = portcullis_token::JwkSet::from_json(jwks.to_string().as_bytes()).expect("jwks");
    let ring = portcullis_token::KeyRing::from_jwks(&set);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = ring
        .verify(
            body["tokens"]["access_token"].as_str().expect("token"),
            &portcullis_token::Validator::new("portcullis", "portcullis"),
            now,
        )
        .expect("verifies with the published key");
    assert_eq!(claims.sub, body["user"]["id"].as_str().expect("id"));
    assert_eq!(claims.roles, vec!["user".to_string()]);
    assert!(claims.exp - claims.iat == 900 && claims.nbf == Some(claims.iat));
    assert!(
        uuid::Uuid::parse_str(&claims.jti)
            .expect("jti")
            .get_version_num()
            == 4
    );
    assert!(
        uuid::Uuid::parse_str(&claims.sid)
            .expect("sid")
            .get_version_num()
            == 4
    );
}}

backends! {
    async fn algorithms_and_issuer_settings() {
    for alg in ["ES256", "RS256"] {
        let app = TestApp::spawn_with(&[
            ("JWT_ALGORITHM", alg),
            ("JWT_ISSUER", "https://auth.example.com"),
            ("JWT_AUDIENCE", "api"),
        ])
        .await;
        let jwks: serde_json::Value = app
            .get("/.well-known/jwks.json", None)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(jwks["keys"][0]["alg"], alg);
        let (_, body) = app.new_user().await;
        let token = body["tokens"]["access_token"].as_str().expect("token");
        assert_eq!(header_of(token)["alg"], alg);
        assert_eq!(
            app.get("/api/profile", Some(token)).await.status(),
            StatusCode::OK
        );
        let ring = portcullis_token::KeyRing::from_jwks(
            &portcullis_token::JwkSet::from_json(jwks.to_string().as_bytes()).expect("jwks"),
        );
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        ring.verify(
            token,
            &portcullis_token::Validator::new("https://auth.example.com", "api"),
            now,
        )
        .expect("issuer and audience come from the settings");
    }
}}

backends! {
    async fn hs256_publishes_no_key() {
    let app = TestApp::spawn_hs256().await;
    let jwks: serde_json::Value = app
        .get("/.well-known/jwks.json", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(jwks["keys"], serde_json::json!([]));
    let (_, body) = app.new_user().await;
    assert_eq!(
        header_of(body["tokens"]["access_token"].as_str().expect("token"))["alg"],
        "HS256"
    );
}}

backends! {
    async fn discovery_and_health() {
    let app = TestApp::spawn_with(&[
        ("PUBLIC_URL", "https://auth.example.com/"),
        ("JWT_ISSUER", "https://auth.example.com"),
    ])
    .await;
    let config: serde_json::Value = app
        .get("/.well-known/openid-configuration", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(config["issuer"], "https://auth.example.com");
    assert_eq!(
        config["jwks_uri"],
        "https://auth.example.com/.well-known/jwks.json"
    );
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);
}}
