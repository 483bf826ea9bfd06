//! Cookie mode, CSRF and CORS (API.md, Cookie mode).

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::backends;
use crate::helpers::{Jar, PASSWORD, TestApp, assert_error, cookie, set_cookies};

async fn cookie_login(app: &TestApp, email: &str) -> (Jar, Value, HeaderMap) {
    let response = app
        .client
        .post(app.url("/api/auth/login?mode=cookie"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let body: Value = response.json().await.expect("json");
    (Jar::from(&headers), body, headers)
}

async fn post_with(
    app: &TestApp,
    path: &str,
    jar: &Jar,
    csrf: Option<&str>,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(path))
        .header("cookie", jar.header());
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    request.send().await.expect("request")
}

backends! {
    async fn cookie_mode_sets_three_cookies_and_no_token_strings() {
        let app = TestApp::spawn().await;
        let (email, _) = app.new_user().await;
        let (_, body, headers) = cookie_login(&app, &email).await;
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert_eq!(body["user"]["email"], email);
        assert!(body.get("tokens").is_none() && !body.to_string().contains("eyJ"), "{body}");
        let cookies = set_cookies(&headers);
        let lower = |c: &(String, String, String)| c.2.to_lowercase();
        let access = lower(cookie(&cookies, "access_token"));
        let refresh = lower(cookie(&cookies, "refresh_token"));
        let csrf = lower(cookie(&cookies, "csrf_token"));
        for (attrs, path) in [(&access, "path=/;"), (&refresh, "path=/api/auth"), (&csrf, "path=/;")] {
            assert!(attrs.contains("secure") && attrs.contains("samesite=strict"), "{attrs}");
            assert!(format!("{attrs};").contains(path), "{attrs}");
        }
        assert!(access.contains("httponly") && refresh.contains("httponly"));
        assert!(!csrf.contains("httponly"), "the page must read csrf_token");
        assert!(access.contains("max-age=604800"), "as long as the refresh token: {access}");
        assert_eq!(headers["cache-control"], "no-store");
    }

    async fn cookie_credentials_need_the_csrf_token_for_state_changes() {
        let app = TestApp::spawn_with(&[("COOKIE_SECURE", "false"), ("PUBLIC_URL", "https://auth.example.com")]).await;
        let (email, _) = app.new_user().await;
        let (jar, _, headers) = cookie_login(&app, &email).await;
        assert!(!set_cookies(&headers).iter().any(|c| c.2.to_lowercase().contains("secure")), "COOKIE_SECURE=false");
        let (other, _, _) = cookie_login(&app, &email).await;
        // Reading needs no CSRF token.
        let me = app.client.get(app.url("/api/auth/me")).header("cookie", jar.header()).send().await.expect("request");
        assert_eq!(me.status(), StatusCode::OK);
        let refused = [
            (None, vec![]),
            (Some("forged.token"), vec![]),
            (Some(other.csrf.as_str()), vec![]),
            (Some(jar.csrf.as_str()), vec![("origin", "https://evil.example")]),
            (Some(jar.csrf.as_str()), vec![("sec-fetch-site", "cross-site")]),
        ];
        for (csrf, extra) in refused {
            let response = post_with(&app, "/api/auth/logout-all", &jar, csrf, &extra).await;
            assert_error(response, StatusCode::FORBIDDEN, "csrf_failed").await;
        }
        // A cookie planted from a sibling domain cannot forge the session binding.
        let mut planted = jar.clone();
        planted.csrf = other.csrf.clone();
        assert_error(post_with(&app, "/api/auth/logout-all", &planted, Some(&other.csrf), &[]).await, StatusCode::FORBIDDEN, "csrf_failed").await;
        let ok = post_with(&app, "/api/auth/logout-all", &jar, Some(&jar.csrf), &[("origin", "https://auth.example.com"), ("sec-fetch-site", "same-origin")]).await;
        assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    }

    async fn refresh_reads_the_cookie_and_rotates_the_csrf_token() {
        let app = TestApp::spawn().await;
        let (email, _) = app.new_user().await;
        let (jar, _, _) = cookie_login(&app, &email).await;
        assert_error(post_with(&app, "/api/auth/refresh", &jar, None, &[]).await, StatusCode::FORBIDDEN, "csrf_failed").await;
        let response = post_with(&app, "/api/auth/refresh", &jar, Some(&jar.csrf), &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers().clone();
        let body: Value = response.json().await.expect("json");
        assert!(body.get("access_token").is_none(), "a cookie credential is answered with cookies only: {body}");
        let next = Jar::from(&headers);
        assert_ne!(next.csrf, jar.csrf);
        assert_ne!(next.refresh, jar.refresh);
        let me = app.client.get(app.url("/api/auth/me")).header("cookie", next.header()).send().await.expect("request");
        assert_eq!(me.status(), StatusCode::OK);
        // Neither cookie nor body: invalid_refresh_token.
        assert_error(app.client.post(app.url("/api/auth/refresh")).send().await.expect("request"), StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
    }

    async fn an_unknown_mode_is_refused_and_other_query_members_are_ignored() {
        let app = TestApp::spawn().await;
        let (email, _) = app.new_user().await;
        let login = |query: &'static str| app.client.post(app.url(&format!("/api/auth/login{query}")))
            .json(&json!({"email": email, "password": PASSWORD})).send();
        let response = login("?mode=cookie&%zz&x=1").await.expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get_all("set-cookie").iter().count() >= 3);
        // A typo must not quietly hand token strings to a page's scripts.
        for query in ["?mode=json", "?mode=cookies", "?mode=cookie&mode=x", "?mode"] {
            assert_error(login(query).await.expect("request"), StatusCode::BAD_REQUEST, "invalid_request").await;
        }
    }

    async fn a_bearer_header_wins_over_cookies() {
        let app = TestApp::spawn().await;
        let (email, _) = app.new_user().await;
        let (jar, _, _) = cookie_login(&app, &email).await;
        let response = app.client.get(app.url("/api/auth/me")).header("cookie", jar.header()).bearer_auth("not.a.token").send().await.expect("request");
        assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }

    async fn logout_by_cookie_clears_all_three_cookies() {
        let app = TestApp::spawn().await;
        let (email, _) = app.new_user().await;
        let (jar, _, _) = cookie_login(&app, &email).await;
        assert_error(post_with(&app, "/api/auth/logout", &jar, None, &[]).await, StatusCode::FORBIDDEN, "csrf_failed").await;
        let response = post_with(&app, "/api/auth/logout", &jar, Some(&jar.csrf), &[]).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let cleared = set_cookies(response.headers());
        for (name, path) in [("access_token", "path=/"), ("refresh_token", "path=/api/auth"), ("csrf_token", "path=/")] {
            let c = cookie(&cleared, name);
            assert!(c.1.is_empty() && c.2.to_lowercase().contains("max-age=0") && c.2.to_lowercase().contains(path), "{c:?}");
        }
        let me = app.client.get(app.url("/api/auth/me")).header("cookie", jar.header()).send().await.expect("request");
        assert_error(me, StatusCode::UNAUTHORIZED, "token_revoked").await;
    }

    async fn cross_site_forms_cannot_log_in_or_register() {
        let app = TestApp::spawn().await;
        let (email, _) = app.new_user().await;
        for path in ["/api/auth/login?mode=cookie", "/api/auth/register?mode=cookie"] {
            for (content_type, body) in [
                ("text/plain", format!(r#"{{"email":"{email}","password":"{PASSWORD}","name":"x"}}"#)),
                ("application/x-www-form-urlencoded", format!("email={email}&password=x&name=x")),
            ] {
                let response = app.client.post(app.url(path)).header("content-type", content_type).header("sec-fetch-site", "cross-site").body(body).send().await.expect("request");
                assert_error(response, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
            }
            // JSON from another site (a fetch without CORS rights) is refused too.
            let response = app.client.post(app.url(path)).header("origin", "https://evil.example").header("sec-fetch-site", "cross-site")
                .json(&json!({"email": email, "password": PASSWORD, "name": "x"})).send().await.expect("request");
            assert_error(response, StatusCode::FORBIDDEN, "csrf_failed").await;
        }
    }

    async fn cors_answers_only_listed_origins() {
        let app = TestApp::spawn_with(&[("CORS_ALLOWED_ORIGINS", "https://app.example.com")]).await;
        let preflight = |origin: &'static str| {
            app.client.request(reqwest::Method::OPTIONS, app.url("/api/auth/me"))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "x-csrf-token, content-type")
                .send()
        };
        let allowed = preflight("https://app.example.com").await.expect("request");
        assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example.com");
        assert_eq!(allowed.headers()["access-control-allow-credentials"], "true");
        let allowed_headers = allowed.headers()["access-control-allow-headers"].to_str().expect("ascii").to_lowercase();
        assert!(allowed_headers.contains("x-csrf-token"), "{allowed_headers}");
        let evil = preflight("https://evil.example").await.expect("request");
        assert!(evil.headers().get("access-control-allow-origin").is_none(), "an arbitrary origin is never reflected");
        let plain = app.client.get(app.url("/healthz")).header("origin", "https://evil.example").send().await.expect("request");
        assert!(plain.headers().get("access-control-allow-origin").is_none());
    }

    async fn the_account_page_is_served_with_a_strict_policy() {
        let app = TestApp::spawn().await;
        for (path, kind) in [("/account", "text/html"), ("/account/account.js", "text/javascript"), ("/account/account.css", "text/css")] {
            let response = app.get(path, None).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert!(response.headers()["content-type"].to_str().expect("ascii").starts_with(kind));
            let csp = response.headers()["content-security-policy"].to_str().expect("ascii").to_owned();
            for directive in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"] {
                assert!(csp.contains(directive), "{path}: {csp}");
            }
            assert_eq!(response.headers()["x-frame-options"], "DENY");
            assert!(!csp.contains("unsafe-inline"));
        }
        let html = app.get("/account", None).await.text().await.expect("text");
        assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style");
    }

    async fn register_in_cookie_mode_awaiting_verification_sets_no_cookies() {
        let app = TestApp::spawn_with(&[("REQUIRE_EMAIL_VERIFICATION", "true")]).await;
        let response = app.client.post(app.url("/api/auth/register?mode=cookie"))
            .json(&json!({"email": "wait@example.com", "password": PASSWORD, "name": "Wait"})).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::CREATED);
        assert!(set_cookies(response.headers()).is_empty());
    }
}
