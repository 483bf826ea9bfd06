//! Mail flows end to end through the outbox (and SMTP): password reset,
//! verification, e-mail change, account deletion, notices, budgets.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backends;
use crate::helpers::{PASSWORD, TestApp, Tokens, assert_error, eventually};

/// The mails in the app's outbox to `to`, bodies decoded from
/// quoted-printable enough to read links.
pub fn mails_to(app: &TestApp, to: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(app.data_dir().join("outbox")) else {
        return Vec::new();
    };
    let mut mails: Vec<(std::time::SystemTime, String)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .filter_map(|e| {
            let modified = e.metadata().and_then(|m| m.modified()).ok()?;
            let text = std::fs::read_to_string(e.path()).ok()?;
            Some((modified, decode(&text)))
        })
        .filter(|(_, text)| text.contains(&format!("To: {to}")))
        .collect();
    mails.sort_by_key(|(t, _)| *t);
    mails.into_iter().map(|(_, m)| m).collect()
}

pub fn decode(raw: &str) -> String {
    raw.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The token of the newest `#kind=` link mailed to `to`, waiting for it.
pub async fn link_token(app: &TestApp, to: &str, kind: &str, nth: usize) -> String {
    let marker = format!("/account#{kind}=");
    eventually(Duration::from_secs(5), || async {
        mails_to(app, to)
            .iter()
            .filter(|m| m.contains(&marker))
            .count()
            >= nth
    })
    .await;
    let mails: Vec<String> = mails_to(app, to)
        .into_iter()
        .filter(|m| m.contains(&marker))
        .collect();
    let mail = &mails[nth - 1];
    let start = mail.find(&marker).expect("link") + marker.len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.post_json(path, &body).await
}

backends! {
    async fn forgot_then_reset_ends_every_session_and_verifies_the_address() {
        let app = TestApp::spawn_with(&[("PUBLIC_URL", "https://auth.example.com")]).await;
        let (email, body) = app.new_user().await;
        let old = Tokens::of(&body["tokens"]);
        assert_eq!(post(&app, "/api/auth/password/forgot", json!({"email": email})).await.status(), StatusCode::ACCEPTED);
        let token = link_token(&app, &email, "reset", 1).await;
        assert!(mails_to(&app, &email).iter().any(|m| m.contains(&format!("https://auth.example.com/account#reset={token}"))));
        // A weak password is refused without using the link up.
        assert_error(post(&app, "/api/auth/password/reset", json!({"token": token, "new_password": "short"})).await, StatusCode::BAD_REQUEST, "weak_password").await;
        let response = post(&app, "/api/auth/password/reset", json!({"token": token, "new_password": "a new and long passphrase"})).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_error(app.get("/api/profile", Some(&old.access)).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
        assert_error(app.refresh(&old.refresh).await, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
        assert_error(app.login(&email, PASSWORD).await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        let response = app.login(&email, "a new and long passphrase").await;
        assert_eq!(response.status(), StatusCode::OK);
        let user: Value = response.json().await.expect("json");
        assert_eq!(user["user"]["email_verified"], true);
        // Single use.
        assert_error(post(&app, "/api/auth/password/reset", json!({"token": token, "new_password": "yet another passphrase"})).await, StatusCode::BAD_REQUEST, "invalid_link").await;
        assert_error(post(&app, "/api/auth/password/reset", json!({"token": "bogus", "new_password": "yet another passphrase"})).await, StatusCode::BAD_REQUEST, "invalid_link").await;
        // The link never reaches the server log.
        assert!(!app.logs().contains(&token));
    }

    async fn forgot_answers_alike_for_unknown_and_disabled_accounts() {
        let app = TestApp::spawn().await;
        let (disabled, _) = app.new_user().await;
        app.sql(&format!("UPDATE users SET disabled = true WHERE email = '{disabled}'")).await;
        for email in ["nobody@example.com", disabled.as_str()] {
            assert_eq!(post(&app, "/api/auth/password/forgot", json!({"email": email})).await.status(), StatusCode::ACCEPTED);
        }
        assert_error(post(&app, "/api/auth/password/forgot", json!({"email": "not-an-address"})).await, StatusCode::BAD_REQUEST, "invalid_request").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(mails_to(&app, "nobody@example.com").is_empty());
        assert!(!mails_to(&app, &disabled).iter().any(|m| m.contains("#reset=")), "no mail to disabled accounts");
    }

    async fn a_newer_link_or_a_password_change_kills_older_links_but_a_capped_request_does_not() {
        let app = TestApp::spawn_with(&[("MAIL_RATE_PER_RECIPIENT", "3/h")]).await;
        // The verification mail at sign-up is the first of three.
        let (email, body) = app.new_user().await;
        let access = body["tokens"]["access_token"].as_str().expect("access").to_owned();
        post(&app, "/api/auth/password/forgot", json!({"email": email})).await;
        let first = link_token(&app, &email, "reset", 1).await;
        post(&app, "/api/auth/password/forgot", json!({"email": email})).await;
        let second = link_token(&app, &email, "reset", 2).await;
        // Capped: nothing is sent, so the latest link stays good.
        assert_eq!(post(&app, "/api/auth/password/forgot", json!({"email": email})).await.status(), StatusCode::ACCEPTED);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(mails_to(&app, &email).iter().filter(|m| m.contains("#reset=")).count(), 2);
        assert_error(post(&app, "/api/auth/password/reset", json!({"token": first, "new_password": "newer passphrase 1"})).await, StatusCode::BAD_REQUEST, "invalid_link").await;
        // A password change kills the remaining link.
        let change = app.client.post(app.url("/api/auth/password")).bearer_auth(&access)
            .json(&json!({"current_password": PASSWORD, "new_password": "changed passphrase 2"})).send().await.expect("request");
        assert_eq!(change.status(), StatusCode::NO_CONTENT);
        assert_error(post(&app, "/api/auth/password/reset", json!({"token": second, "new_password": "newer passphrase 3"})).await, StatusCode::BAD_REQUEST, "invalid_link").await;
    }

    async fn a_global_mail_budget_stops_floods_to_many_inboxes() {
        let app = TestApp::spawn_with(&[("MAIL_RATE_GLOBAL", "2/h")]).await;
        // Two sign-ups use the two mails of the hour.
        let (first, _) = app.new_user().await;
        let (second, _) = app.new_user().await;
        link_token(&app, &first, "verify", 1).await;
        link_token(&app, &second, "verify", 1).await;
        let (third, _) = app.new_user().await;
        assert_eq!(post(&app, "/api/auth/password/forgot", json!({"email": first})).await.status(), StatusCode::ACCEPTED);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(mails_to(&app, &third).is_empty());
        assert!(!mails_to(&app, &first).iter().any(|m| m.contains("#reset=")));
    }

    async fn a_reset_lifts_a_lockout() {
        let app = TestApp::spawn_with(&[("LOCKOUT_THRESHOLD", "2")]).await;
        let (email, _) = app.new_user().await;
        for _ in 0..2 {
            app.login(&email, "wrong password").await;
        }
        assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
        post(&app, "/api/auth/password/forgot", json!({"email": email})).await;
        let token = link_token(&app, &email, "reset", 1).await;
        post(&app, "/api/auth/password/reset", json!({"token": token, "new_password": "fresh passphrase here"})).await;
        assert_eq!(app.login(&email, "fresh passphrase here").await.status(), StatusCode::OK);
    }

    async fn verification_links_and_resend() {
        let app = TestApp::spawn().await;
        let (email, body) = app.new_user().await;
        let access = body["tokens"]["access_token"].as_str().expect("access").to_owned();
        assert_eq!(body["user"]["email_verified"], false);
        // Mails are ordered by file time: take the first before the second
        // is written, so the two can never share a timestamp.
        let first = link_token(&app, &email, "verify", 1).await;
        assert_eq!(post(&app, "/api/auth/email/resend", json!({"email": email})).await.status(), StatusCode::ACCEPTED);
        let second = link_token(&app, &email, "verify", 2).await;
        assert_error(post(&app, "/api/auth/email/verify", json!({"token": first})).await, StatusCode::BAD_REQUEST, "invalid_link").await;
        assert_eq!(post(&app, "/api/auth/email/verify", json!({"token": second})).await.status(), StatusCode::NO_CONTENT);
        let me: Value = app.get("/api/auth/me", Some(&access)).await.json().await.expect("json");
        assert_eq!(me["email_verified"], true);
        assert_error(post(&app, "/api/auth/email/verify", json!({"token": second})).await, StatusCode::BAD_REQUEST, "invalid_link").await;
        // Resend for a verified (or unknown) address: 202 and no mail.
        assert_eq!(post(&app, "/api/auth/email/resend", json!({"email": email})).await.status(), StatusCode::ACCEPTED);
        assert_eq!(post(&app, "/api/auth/email/resend", json!({"email": "nobody@example.com"})).await.status(), StatusCode::ACCEPTED);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(mails_to(&app, &email).iter().filter(|m| m.contains("#verify=")).count(), 2);
    }

    async fn required_verification_holds_tokens_back_until_confirmed() {
        let app = TestApp::spawn_with(&[("REQUIRE_EMAIL_VERIFICATION", "true")]).await;
        let email = "careful@example.com";
        let response = app.register(email, PASSWORD, "Careful").await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("json");
        assert!(body.get("tokens").is_none(), "{body}");
        assert_eq!(body["user"]["email"], email);
        assert_error(app.login(email, "wrong password").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        assert_error(app.login(email, PASSWORD).await, StatusCode::FORBIDDEN, "email_not_verified").await;
        let token = link_token(&app, email, "verify", 1).await;
        assert_eq!(post(&app, "/api/auth/email/verify", json!({"token": token})).await.status(), StatusCode::NO_CONTENT);
        assert_eq!(app.login(email, PASSWORD).await.status(), StatusCode::OK);
    }

    async fn changing_the_address_needs_the_new_inbox_and_tells_the_old_one() {
        let app = TestApp::spawn().await;
        let (email, body) = app.new_user().await;
        let (taken, _) = app.new_user().await;
        let access = body["tokens"]["access_token"].as_str().expect("access").to_owned();
        let change = |new_email: String, password: &'static str| {
            app.client.post(app.url("/api/auth/email")).bearer_auth(&access)
                .json(&json!({"new_email": new_email, "password": password})).send()
        };
        assert_error(change("new@example.com".into(), "wrong password").await.expect("request"), StatusCode::FORBIDDEN, "invalid_credentials").await;
        assert_error(change(taken.clone(), PASSWORD).await.expect("request"), StatusCode::CONFLICT, "user_exists").await;
        assert_error(change("not an address".into(), PASSWORD).await.expect("request"), StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(change("New.Address@Example.com".into(), PASSWORD).await.expect("request").status(), StatusCode::ACCEPTED);
        let token = link_token(&app, "new.address@example.com", "email", 1).await;
        eventually(Duration::from_secs(5), || async {
            mails_to(&app, &email).iter().any(|m| m.contains("new.address@example.com"))
        })
        .await;
        assert_eq!(post(&app, "/api/auth/email/confirm", json!({"token": token})).await.status(), StatusCode::NO_CONTENT);
        let me: Value = app.get("/api/auth/me", Some(&access)).await.json().await.expect("json");
        assert_eq!(me["email"], "new.address@example.com");
        assert_eq!(app.login("new.address@example.com", PASSWORD).await.status(), StatusCode::OK);
        assert_error(post(&app, "/api/auth/email/confirm", json!({"token": token})).await, StatusCode::BAD_REQUEST, "invalid_link").await;
    }

    async fn users_can_delete_their_account() {
        let app = TestApp::spawn().await;
        let (email, body) = app.new_user().await;
        let access = body["tokens"]["access_token"].as_str().expect("access").to_owned();
        let delete = |password: &'static str| {
            app.client.delete(app.url("/api/auth/me")).bearer_auth(&access).json(&json!({"password": password})).send()
        };
        assert_error(delete("wrong password").await.expect("request"), StatusCode::FORBIDDEN, "invalid_credentials").await;
        assert_eq!(delete(PASSWORD).await.expect("request").status(), StatusCode::NO_CONTENT);
        assert_error(app.get("/api/profile", Some(&access)).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
        assert_error(app.login(&email, PASSWORD).await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        let users: i64 = app.scalar(&format!("SELECT COUNT(*) FROM users WHERE email = '{email}'")).await;
        assert_eq!(users, 0);
    }

    async fn the_last_admin_cannot_delete_itself() {
        let app = TestApp::spawn().await;
        let tokens = app.admin().await;
        let response = app.client.delete(app.url("/api/auth/me")).bearer_auth(&tokens.access).json(&json!({"password": PASSWORD})).send().await.expect("request");
        assert_error(response, StatusCode::CONFLICT, "conflict").await;
    }

    async fn notices_for_password_changes_and_new_devices() {
        let app = TestApp::spawn().await;
        let (email, body) = app.new_user().await;
        let access = body["tokens"]["access_token"].as_str().expect("access").to_owned();
        let login_with = |agent: &'static str| {
            app.client.post(app.url("/api/auth/login")).header("user-agent", agent)
                .json(&json!({"email": email, "password": PASSWORD})).send()
        };
        assert_eq!(login_with("Browser A").await.expect("request").status(), StatusCode::OK);
        eventually(Duration::from_secs(5), || async {
            mails_to(&app, &email).iter().any(|m| m.contains("New sign-in") && m.contains("Browser A"))
        })
        .await;
        let change = app.client.post(app.url("/api/auth/password")).bearer_auth(&access)
            .json(&json!({"current_password": PASSWORD, "new_password": "changed passphrase 2"})).send().await.expect("request");
        assert_eq!(change.status(), StatusCode::NO_CONTENT);
        eventually(Duration::from_secs(5), || async {
            mails_to(&app, &email).iter().any(|m| m.contains("Your password was changed"))
        })
        .await;
    }
}

/// A real SMTP server (aiosmtpd, from PyPI) that prints what it receives.
struct SmtpServer {
    port: u16,
    child: std::process::Child,
    received: std::sync::Arc<std::sync::Mutex<String>>,
}

impl SmtpServer {
    fn start() -> Option<Self> {
        let python = std::env::var("PORTCULLIS_TEST_SMTPD")
            .ok()
            .filter(|p| !p.is_empty());
        let Some(python) = python else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PORTCULLIS_TEST_SMTPD must be set in CI"
            );
            eprintln!(
                "skipping the SMTP test: PORTCULLIS_TEST_SMTPD (a Python with aiosmtpd) is not set"
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let mut child = std::process::Command::new(python)
            .args([
                "-u",
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let received = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = received.clone();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let mut all = sink.lock().expect("lock");
                all.push_str(&line);
                all.push('\n');
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "aiosmtpd did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self {
            port,
            child,
            received,
        })
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

backends! {
    async fn mail_goes_out_over_smtp() {
        let Some(smtp) = SmtpServer::start() else { return };
        let url = format!("smtp://127.0.0.1:{}", smtp.port);
        let app = TestApp::spawn_with(&[("SMTP_URL", &url), ("MAIL_FROM", "Portcullis <auth@example.com>")]).await;
        let (email, _) = app.new_user().await;
        assert_eq!(post(&app, "/api/auth/password/forgot", json!({"email": email})).await.status(), StatusCode::ACCEPTED);
        eventually(Duration::from_secs(10), || async { decode(&smtp.received.lock().expect("lock")).contains("#reset=") }).await;
        let received = decode(&smtp.received.lock().expect("lock"));
        assert!(received.contains(&format!("To: {email}")), "{received}");
        assert!(received.contains("From: Portcullis <auth@example.com>"), "{received}");
        assert!(!app.data_dir().join("outbox").exists(), "no outbox when SMTP is configured");
        let start = received.find("#reset=").expect("link") + "#reset=".len();
        let token: String = received[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
        let response = post(&app, "/api/auth/password/reset", json!({"token": token, "new_password": "sent over smtp passphrase"})).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(app.login(&email, "sent over smtp passphrase").await.status(), StatusCode::OK);
    }
}
