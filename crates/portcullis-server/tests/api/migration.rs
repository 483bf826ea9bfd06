//! Moving over from the classic Go design: its users, imported with their
//! bcrypt hashes, and its client flow, unchanged but for what
//! `docs/migrating-from-go.md` lists.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backends;
use crate::helpers::{TestApp, TestEnv, Tokens, assert_error};

/// What Go's `bcrypt.GenerateFromPassword` writes (`$2a$`); cost 4 keeps
/// the test fast, verification does not care.
fn go_hash(password: &str) -> String {
    bcrypt::hash(password, 4)
        .expect("bcrypt")
        .replacen("$2b$", "$2a$", 1)
}

fn import(env: &TestEnv, file: &std::path::Path) -> (bool, String, String) {
    let path = file.to_str().expect("path");
    let output = env.run(&["user", "import", path], &[]);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

backends! {
    async fn go_users_are_imported_once_and_sign_in_with_their_old_passwords() {
        let env = TestEnv::new(&[]);
        let jsonl = env.data_dir.join("users.jsonl");
        let lines = [
            // Go's User struct marshalled without tags, and with them.
            json!({"ID": 1, "Email": "Ada@Example.com", "Name": "Ada", "Password": go_hash("ada's old secret")}).to_string(),
            json!({"id": 2, "email": "grace@example.com", "name": "Grace", "password_hash": go_hash("grace's old secret")}).to_string(),
            String::new(),
            json!({"email": "plain@example.com", "name": "Plain", "password": "hunter22"}).to_string(),
            json!({"email": "no-at-sign", "name": "X", "password": go_hash("x")}).to_string(),
            "{not json".to_owned(),
            json!({"email": "linus@example.com", "password": go_hash("linus's old secret")}).to_string(),
        ];
        std::fs::write(&jsonl, lines.join("\n")).expect("write");
        let (ok, stdout, stderr) = import(&env, &jsonl);
        assert!(!ok, "failed lines make the command fail");
        assert!(stdout.contains("imported 3, skipped 0 (already there), failed 3"), "{stdout}\n{stderr}");
        for number in [4, 5, 6] {
            assert!(stderr.contains(&format!("line {number}: ")), "line {number} not reported:\n{stderr}");
        }
        assert!(stderr.contains("plaintext passwords are never imported"), "{stderr}");
        assert!(!stderr.contains("hunter22"), "a password reached the output");

        // Again: nothing changes, nothing is duplicated.
        let (_, stdout, _) = import(&env, &jsonl);
        assert!(stdout.contains("imported 0, skipped 3 (already there), failed 3"), "{stdout}");

        let csv = env.data_dir.join("more.csv");
        let csv_text = format!(
            "email,name,password_hash\n\"barbara@example.com\",\"Liskov, Barbara\",{}\nada@example.com,Ada,{}\n",
            go_hash("barbara's old secret"),
            go_hash("another")
        );
        std::fs::write(&csv, csv_text).expect("write");
        let (ok, stdout, stderr) = import(&env, &csv);
        assert!(ok, "{stdout}\n{stderr}");
        assert!(stdout.contains("imported 1, skipped 1 (already there), failed 0"), "{stdout}");

        let app = TestApp::start_in(env).await;
        for (email, password, name) in [
            ("ada@example.com", "ada's old secret", "Ada"),
            ("grace@example.com", "grace's old secret", "Grace"),
            ("linus@example.com", "linus's old secret", "linus"),
            ("barbara@example.com", "barbara's old secret", "Liskov, Barbara"),
        ] {
            let response = app.login(email, password).await;
            assert_eq!(response.status(), StatusCode::OK, "{email}");
            let body: Value = response.json().await.expect("json");
            assert_eq!(body["user"]["name"], name);
            let stored: String = app.scalar(&format!("SELECT password_hash FROM users WHERE email = '{email}'")).await;
            assert!(stored.starts_with("$argon2id$"), "{email} was not re-hashed on login");
        }
        assert_error(app.login("ada@example.com", "another").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        let users: i64 = app.scalar("SELECT COUNT(*) FROM users").await;
        assert_eq!(users, 4);
    }

    async fn the_go_client_flow_works_with_the_rotated_refresh_token_stored() {
        let app = TestApp::spawn_with(&[("REFRESH_GRACE", "1s")]).await;
        // Register and log in exactly as the Go design's clients do.
        let register = app.post_json("/api/auth/register", &json!({
            "email": "go-client@example.com", "password": "a go client's password", "name": "Gopher"
        })).await;
        assert_eq!(register.status(), StatusCode::CREATED);
        let body: Value = register.json().await.expect("json");
        assert!(body["user"]["id"].is_string(), "ids are strings (UUIDs), not numbers");
        assert!(body["tokens"]["access_token"].is_string() && body["tokens"]["expires_in"].is_u64());
        let login = app.post_json("/api/auth/login", &json!({
            "email": "go-client@example.com", "password": "a go client's password"
        })).await;
        assert_eq!(login.status(), StatusCode::OK);
        let body: Value = login.json().await.expect("json");
        let mut tokens = Tokens::of(&body["tokens"]);

        // The protected route with `Authorization: Bearer`.
        let profile: Value = app.get("/api/profile", Some(&tokens.access)).await.json().await.expect("json");
        assert_eq!(profile["email"], "go-client@example.com");
        assert_eq!(profile["user_id"], body["user"]["id"]);

        // Refresh: the answer has the Go design's shape, and the client keeps
        // the refresh token it returns (each one is good once).
        for _ in 0..3 {
            let refreshed = app.post_json("/api/auth/refresh", &json!({"refresh_token": tokens.refresh})).await;
            assert_eq!(refreshed.status(), StatusCode::OK);
            let pair: Value = refreshed.json().await.expect("json");
            for member in ["access_token", "refresh_token", "expires_in"] {
                assert!(!pair[member].is_null(), "{member} missing from {pair}");
            }
            let previous = std::mem::replace(&mut tokens, Tokens::of(&pair));
            assert_ne!(previous.refresh, tokens.refresh, "refresh tokens rotate");
            assert_eq!(app.get("/api/profile", Some(&tokens.access)).await.status(), StatusCode::OK);
        }
        // A client that keeps the first refresh token, as some Go clients do,
        // is told so: after the grace window that is token theft.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let first: Value = body["tokens"].clone();
        let replay = app.post_json("/api/auth/refresh", &json!({"refresh_token": first["refresh_token"]})).await;
        assert_error(replay, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
        // The Go design's refresh tokens were JWTs usable as access tokens;
        // Portcullis's are opaque and never are.
        assert_error(app.get("/api/profile", Some(&tokens.refresh)).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
}
