//! Rate limits, lock-out and client addresses (API.md, Rate limits).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backends;
use crate::helpers::{PASSWORD, TestApp, assert_error, cluster};

/// A login as if from `address`, through the trusted proxy at 127.0.0.1.
async fn login_from(
    app: &TestApp,
    address: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", address)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("request")
}

async fn retry_after(response: reqwest::Response) -> u64 {
    let seconds = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    seconds
}

backends! {
    async fn logins_per_address_are_limited_and_forged_headers_do_not_help() {
        let app = TestApp::spawn_with(&[("LOGIN_RATE_PER_ADDRESS", "3/m")]).await;
        let (email, _) = app.new_user().await;
        for _ in 0..3 {
            // A forged X-Forwarded-For from an untrusted peer changes nothing.
            let response = login_from(&app, &format!("198.51.100.{}", rand_octet()), &email, "wrong password").await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let wait = retry_after(login_from(&app, "203.0.113.77", &email, PASSWORD).await).await;
        assert!((1..=20).contains(&wait), "{wait}");
        // 429 comes before 415 (API.md's order).
        let response = app.client.post(app.url("/api/auth/login")).header("content-type", "text/plain").body("x").send().await.expect("request");
        assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }

    async fn behind_a_trusted_proxy_the_real_address_counts_and_is_recorded() {
        let app = TestApp::spawn_with(&[("LOGIN_RATE_PER_ADDRESS", "2/m"), ("TRUSTED_PROXIES", "127.0.0.1/32"), ("LOG_FORMAT", "json")]).await;
        let (email, _) = app.new_user().await;
        assert_eq!(login_from(&app, "198.51.100.7", &email, PASSWORD).await.status(), StatusCode::OK);
        // The client prepends a forged entry; the proxy appended the real one.
        let response = login_from(&app, "6.6.6.6, 198.51.100.7", &email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        let tokens: Value = response.json().await.expect("json");
        retry_after(login_from(&app, "1.1.1.1, 198.51.100.7", &email, PASSWORD).await).await;
        // Another real client behind the same proxy has its own budget.
        assert_eq!(login_from(&app, "198.51.100.8", &email, PASSWORD).await.status(), StatusCode::OK);
        // Sessions and audit events carry the real address.
        let access = tokens["tokens"]["access_token"].as_str().expect("access");
        let sessions: Vec<Value> = app.get("/api/auth/sessions", Some(access)).await.json().await.expect("json");
        let current = sessions.iter().find(|s| s["current"] == true).expect("current");
        assert_eq!(current["ip"], "198.51.100.7");
        assert!(app.logs().contains(r#""ip":"198.51.100.7""#), "audit events carry the client address");
    }

    async fn ipv6_clients_count_by_their_slash_64() {
        let app = TestApp::spawn_with(&[("LOGIN_RATE_PER_ADDRESS", "2/m"), ("TRUSTED_PROXIES", "127.0.0.1")]).await;
        let (email, _) = app.new_user().await;
        assert_eq!(login_from(&app, "2001:db8::1", &email, PASSWORD).await.status(), StatusCode::OK);
        assert_eq!(login_from(&app, "2001:db8::2", &email, PASSWORD).await.status(), StatusCode::OK);
        retry_after(login_from(&app, "2001:db8::ffff:3", &email, PASSWORD).await).await;
        assert_eq!(login_from(&app, "2001:db8:0:1::1", &email, PASSWORD).await.status(), StatusCode::OK);
    }

    async fn a_locked_pair_refuses_even_the_right_password() {
        let app = TestApp::spawn_with(&[("LOCKOUT_THRESHOLD", "3"), ("TRUSTED_PROXIES", "127.0.0.1")]).await;
        let (email, _) = app.new_user().await;
        // A success resets the count.
        for _ in 0..2 {
            assert_eq!(login_from(&app, "198.51.100.1", &email, "wrong password").await.status(), StatusCode::UNAUTHORIZED);
        }
        assert_eq!(login_from(&app, "198.51.100.1", &email, PASSWORD).await.status(), StatusCode::OK);
        for _ in 0..3 {
            assert_eq!(login_from(&app, "198.51.100.1", &email, "wrong password").await.status(), StatusCode::UNAUTHORIZED);
        }
        let wait = retry_after(login_from(&app, "198.51.100.1", &email, PASSWORD).await).await;
        assert!((850..=900).contains(&wait), "15 minutes by default: {wait}");
        // Only that pair: the owner elsewhere gets in.
        assert_eq!(login_from(&app, "198.51.100.2", &email, PASSWORD).await.status(), StatusCode::OK);
    }

    async fn unknown_emails_lock_the_same_way() {
        let app = TestApp::spawn_with(&[("LOCKOUT_THRESHOLD", "3")]).await;
        for email in ["nobody@example.com", "not an email at all"] {
            for _ in 0..3 {
                assert_error(app.login(email, "whatever pw").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
            }
            retry_after(app.login(email, "whatever pw").await).await;
        }
    }

    async fn an_account_failing_from_everywhere_is_slowed_down() {
        let app = TestApp::spawn_with(&[("ACCOUNT_FAILURE_LIMIT", "4/h"), ("TRUSTED_PROXIES", "127.0.0.1")]).await;
        let (email, _) = app.new_user().await;
        for i in 0..4 {
            let response = login_from(&app, &format!("192.0.2.{i}"), &email, "wrong password").await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        // The 5th attempt, from a fresh address and with the right password,
        // waits for the minute.
        let wait = retry_after(login_from(&app, "192.0.2.99", &email, PASSWORD).await).await;
        assert!((50..=60).contains(&wait), "{wait}");
    }

    async fn a_wrong_current_password_counts_as_a_failed_login() {
        let app = TestApp::spawn_with(&[("LOCKOUT_THRESHOLD", "2")]).await;
        let (email, body) = app.new_user().await;
        let access = body["tokens"]["access_token"].as_str().expect("access").to_owned();
        let change = |current: &'static str| {
            app.client
                .post(app.url("/api/auth/password"))
                .bearer_auth(&access)
                .json(&json!({"current_password": current, "new_password": "another fine passphrase"}))
                .send()
        };
        for _ in 0..2 {
            assert_error(change("wrong password").await.expect("request"), StatusCode::FORBIDDEN, "invalid_credentials").await;
        }
        retry_after(change(PASSWORD).await.expect("request")).await;
        retry_after(app.login(&email, PASSWORD).await).await;
    }

    async fn registrations_per_address_are_limited() {
        let app = TestApp::spawn_with(&[("SIGNUP_RATE_PER_ADDRESS", "2/h")]).await;
        app.new_user().await;
        app.new_user().await;
        let wait = retry_after(app.register("third@example.com", PASSWORD, "Third").await).await;
        assert!(wait > 1000, "{wait}");
    }
}

fn rand_octet() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0]
}

#[tokio::test]
async fn per_address_budgets_are_shared_by_instances_on_redis() {
    let Some(apps) = cluster(2, true, &[("LOGIN_RATE_PER_ADDRESS", "3/m")]).await else {
        return;
    };
    let (email, _) = apps[0].new_user().await;
    assert_eq!(
        apps[0].login(&email, PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        apps[1].login(&email, PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        apps[0].login(&email, PASSWORD).await.status(),
        StatusCode::OK
    );
    retry_after(apps[1].login(&email, PASSWORD).await).await;
}

#[tokio::test]
async fn lockout_holds_across_instances_without_redis() {
    let Some(apps) = cluster(2, false, &[("LOCKOUT_THRESHOLD", "2")]).await else {
        return;
    };
    let (email, _) = apps[0].new_user().await;
    for _ in 0..2 {
        assert_eq!(
            apps[0].login(&email, "wrong password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    retry_after(apps[1].login(&email, PASSWORD).await).await;
}
