//! Forward auth: `GET /api/auth/verify`.

use reqwest::StatusCode;
use serde_json::json;

use crate::backends;
use crate::helpers::{TestApp, Tokens, assert_error};

backends! {
    async fn verify_answers_with_the_user_headers() {
        let app = TestApp::spawn().await;
        let (email, body) = app.new_user().await;
        let tokens = Tokens::of(&body["tokens"]);
        let response = app.get("/api/auth/verify", Some(&tokens.access)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert_eq!(headers["x-user-id"], body["user"]["id"].as_str().expect("id"));
        assert_eq!(headers["x-user-email"], email.as_str());
        assert_eq!(headers["x-user-roles"], "user");
        assert_eq!(headers["cache-control"], "no-store");
        assert_error(app.get("/api/auth/verify?role=admin", Some(&tokens.access)).await, StatusCode::FORBIDDEN, "forbidden").await;
        assert_eq!(app.get("/api/auth/verify?role=user", Some(&tokens.access)).await.status(), StatusCode::OK);
        assert_error(app.get("/api/auth/verify", None).await, StatusCode::UNAUTHORIZED, "missing_token").await;
        app.post_auth("/api/auth/logout", &tokens.access).await;
        assert_error(app.get("/api/auth/verify", Some(&tokens.access)).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
    }

    async fn cookie_credentials_need_csrf_for_unsafe_original_methods() {
        let app = TestApp::spawn().await;
        let (email, _) = app.new_user().await;
        let response = app.client.post(app.url("/api/auth/login?mode=cookie"))
            .json(&json!({"email": email, "password": crate::helpers::PASSWORD})).send().await.expect("request");
        let cookies = crate::helpers::Jar::from(response.headers());
        let (jar, csrf) = (cookies.header(), cookies.csrf);
        let verify = |method: &'static str, csrf: Option<&str>| {
            let mut request = app.client.get(app.url("/api/auth/verify")).header("cookie", &jar).header("x-forwarded-method", method);
            if let Some(csrf) = csrf {
                request = request.header("x-csrf-token", csrf.to_owned());
            }
            request.send()
        };
        assert_eq!(verify("GET", None).await.expect("request").status(), StatusCode::OK);
        assert_error(verify("POST", None).await.expect("request"), StatusCode::FORBIDDEN, "csrf_failed").await;
        assert_eq!(verify("POST", Some(&csrf)).await.expect("request").status(), StatusCode::OK);
    }
}

/// Envoy's HTTP `ext_authz` asks with the original method at the prefix
/// followed by the original path and query: that query is never read as
/// ours, and a cookie credential on an unsafe method needs the CSRF proof.
#[tokio::test]
async fn envoy_shaped_checks() {
    let app = TestApp::spawn().await;
    let (email, body) = app.new_user().await;
    let tokens = Tokens::of(&body["tokens"]);
    for (method, path) in [
        (
            reqwest::Method::POST,
            "/api/auth/verify/orders/7?role=admin",
        ),
        (reqwest::Method::DELETE, "/api/auth/verify/orders/7"),
        (reqwest::Method::PUT, "/api/auth/verify"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(&tokens.access)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{method} {path}");
        assert_eq!(response.headers()["x-user-email"], email.as_str());
    }

    let response = app
        .client
        .post(app.url("/api/auth/login?mode=cookie"))
        .json(&json!({"email": email, "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .expect("request");
    let cookies = crate::helpers::Jar::from(response.headers());
    let (jar, csrf) = (cookies.header(), cookies.csrf);
    let check = |method: reqwest::Method, csrf: Option<&str>| {
        let mut request = app
            .client
            .request(method, app.url("/api/auth/verify/notes"))
            .header("cookie", &jar);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf.to_owned());
        }
        request.send()
    };
    let get = check(reqwest::Method::GET, None).await.expect("request");
    assert_eq!(get.status(), StatusCode::OK);
    let post = check(reqwest::Method::POST, None).await.expect("request");
    assert_error(post, StatusCode::FORBIDDEN, "csrf_failed").await;
    let post = check(reqwest::Method::POST, Some(&csrf))
        .await
        .expect("request");
    assert_eq!(post.status(), StatusCode::OK);
    // A method header that names no method counts as unsafe.
    let odd = app
        .client
        .get(app.url("/api/auth/verify"))
        .header("cookie", &jar)
        .header("x-forwarded-method", "P O S T")
        .send()
        .await
        .expect("request");
    assert_error(odd, StatusCode::FORBIDDEN, "csrf_failed").await;
}
