//! The process: restarts, files on disk, secrets, the CLI, signals, TLS.

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::backends;
use crate::helpers::{PASSWORD, TestApp, TestEnv, fresh_data_dir};

backends! {
    async fn restart_keeps_keys_users_and_tokens() {
    let app = TestApp::spawn().await;
    let (email, body) = app.new_user().await;
    let token = body["tokens"]["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let jwks_before: serde_json::Value = app
        .get("/.well-known/jwks.json", None)
        .await
        .json()
        .await
        .expect("json");
    let app = app.restart().await;
    let jwks_after: serde_json::Value = app
        .get("/.well-known/jwks.json", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        jwks_before, jwks_after,
        "the signing key survives a restart"
    );
    assert_eq!(
        app.get("/api/auth/me", Some(&token)).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
}}

backends! {
    async fn no_password_or_token_in_the_database_or_the_logs() {
    let app = TestApp::spawn_with(&[("LOG_FORMAT", "json"), ("RUST_LOG", "debug")]).await;
    let password = "a-very-distinctive-passphrase-42";
    let response = app.register("secret@example.com", password, "Secret").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: serde_json::Value = response.json().await.expect("json");
    let access = body["tokens"]["access_token"].as_str().expect("access");
    let refresh = body["tokens"]["refresh_token"].as_str().expect("refresh");
    assert_eq!(
        app.get("/api/profile", Some(access)).await.status(),
        StatusCode::OK
    );
    let _ = app
        .login("secret@example.com", "wrong-but-also-secret-99")
        .await;
    let _ = app.get("/api/profile", Some("garbage.token.value")).await;

    let stored = app.stored().await;
    let logs = app.logs();
    for secret in [password, "wrong-but-also-secret-99", refresh, access] {
        assert!(!stored.contains(secret), "a secret is stored in clear");
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
    assert!(!stored.contains("PRIVATE KEY"), "private keys are sealed");
    assert!(
        logs.contains("\"event\":\"register\""),
        "audit events are logged as JSON:\n{logs}"
    );
    assert!(logs.contains("\"event\":\"login_failed\""));
}}

backends! {
    async fn the_master_key_file_is_private_and_required_to_read_the_keys() {
    let app = TestApp::spawn().await;
    let path = app.data_dir().join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("master.key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let env = app.into_env();
    // Same database, another master key: refuse to start, say why.
    let wrong = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
    let output = env.run(&[], &[("PORTCULLIS_MASTER_KEY", &wrong)]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PORTCULLIS_MASTER_KEY"), "{stderr}");
}}

#[tokio::test]
async fn bad_settings_stop_the_process_naming_the_variable() {
    let cases: [(&str, &str, &str); 5] = [
        ("JWT_SECRET", "too-short", "JWT_SECRET"),
        ("JWT_EXPIRATION", "soon", "JWT_EXPIRATION"),
        ("JWT_ALGORITHM", "none", "JWT_ALGORITHM"),
        ("PORT", "http", "PORT"),
        ("PUBLIC_URL", "auth.example.com", "PUBLIC_URL"),
    ];
    for (name, value, expected) in cases {
        let output = TestEnv::new(&[(name, value)]).run(&[], &[]);
        assert_eq!(output.status.code(), Some(2), "{name}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
    // JWT_SECRET with an asymmetric JWT_ALGORITHM.
    let secret = "x".repeat(40);
    let output = TestEnv::new(&[("JWT_SECRET", &secret), ("JWT_ALGORITHM", "ES256")]).run(&[], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("JWT_SECRET"));
}

backends! {
    async fn cli_creates_admins_lists_keys_and_migrates() {
    let env = TestEnv::new(&[]);
    let run = |args: &[&str]| {
        let output = env.run(args, &[]);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(run(&["migrate"]).contains("up to date"));
    let created = run(&[
        "user",
        "create",
        "--email",
        "Root@Example.com",
        "--password",
        PASSWORD,
        "--role",
        "admin",
    ]);
    assert!(
        created.contains("root@example.com") && created.contains("user,admin"),
        "{created}"
    );
    let keys = run(&["keys", "list"]);
    let lines: Vec<&str> = keys.lines().collect();
    assert_eq!(lines.len(), 1, "{keys}");
    let fields: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(fields[1], "EdDSA");
    assert_eq!(fields[2], "current");
    assert!(
        time::OffsetDateTime::parse(fields[3], &time::format_description::well_known::Rfc3339)
            .is_ok()
    );
    // A weak password is refused by the CLI too.
    let weak = env.run(&[
            "user",
            "create",
            "--email",
            "b@example.com",
            "--password",
            "short",
        ], &[]);
    assert!(!weak.status.success());

    let app = TestApp::start_in(env).await;
    let response = app.login("root@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["user"]["roles"], serde_json::json!(["user", "admin"]));
    assert_eq!(body["user"]["name"], "root");
    let jwks: serde_json::Value = app
        .get("/.well-known/jwks.json", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        jwks["keys"][0]["kid"], fields[0],
        "keys list shows the key the server uses"
    );
}}

backends! {
    async fn sigterm_stops_gracefully() {
    let mut app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    let status = app.terminate();
    assert!(status.success(), "{status}");
    assert!(app.logs().contains("shutting down"));
}}

/// A self-signed certificate for 127.0.0.1 made by the openssl CLI.
fn make_certificate(
    dir: &std::path::Path,
    name: &str,
) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    status.success().then_some((cert, key))
}

fn client_trusting(cert: &std::path::Path) -> reqwest::Client {
    let pem = std::fs::read(cert).expect("cert");
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("pem")])
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

#[tokio::test]
async fn https_with_hsts_and_certificate_reload() {
    let certs = fresh_data_dir();
    let Some((cert, key)) = make_certificate(&certs, "first") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "openssl is required in CI"
        );
        eprintln!("skipping: the openssl CLI is not available to make a test certificate");
        return;
    };
    let live_cert = certs.join("live.crt");
    let live_key = certs.join("live.key");
    std::fs::copy(&cert, &live_cert).expect("copy");
    std::fs::copy(&key, &live_key).expect("copy");
    let mut app = TestApp::spawn_with(&[
        ("TLS_CERT", live_cert.to_str().expect("utf-8")),
        ("TLS_KEY", live_key.to_str().expect("utf-8")),
    ])
    .await;
    app.client = client_trusting(&cert);
    assert!(app.address.starts_with("https://"));
    let response = app.get("/healthz", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );

    // Renew the certificate in place: new connections get the new one.
    let (second_cert, second_key) = make_certificate(&certs, "second").expect("second certificate");
    std::fs::copy(&second_key, &live_key).expect("copy");
    std::fs::copy(&second_cert, &live_cert).expect("copy");
    let renewed = client_trusting(&second_cert);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if renewed.get(app.url("/healthz")).send().await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = std::fs::remove_dir_all(certs);
}

backends! {
    async fn a_rotated_key_is_published_before_it_signs() {
        let app = TestApp::spawn().await;
        let (_, body) = app.new_user().await;
        let before = body["tokens"]["access_token"].as_str().expect("token").to_owned();
        let output = app.env.run(&["keys", "rotate"], &[]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let mut fields = stdout.trim().split('\t');
        let new_kid = fields.next().expect("kid").to_owned();
        let signing_from = time::OffsetDateTime::parse(fields.next().expect("date"), &time::format_description::well_known::Rfc3339).expect("date");
        let wait = signing_from - time::OffsetDateTime::now_utc();
        assert!(wait > time::Duration::seconds(300) && wait <= time::Duration::seconds(360), "{wait}");
        // Published at once (after the periodic reload), not yet signing.
        crate::helpers::eventually(std::time::Duration::from_secs(10), || async {
            let jwks: serde_json::Value = app.get("/.well-known/jwks.json", None).await.json().await.expect("json");
            jwks["keys"].as_array().is_some_and(|k| k.iter().any(|k| k["kid"] == new_kid.as_str()))
        })
        .await;
        let (_, later) = app.new_user().await;
        let header = |t: &str| t.split('.').next().map(str::to_owned);
        assert_eq!(header(later["tokens"]["access_token"].as_str().expect("token")), header(&before), "the old key still signs");
        let list = app.env.run(&["keys", "list"], &[]);
        let list = String::from_utf8_lossy(&list.stdout).into_owned();
        assert!(list.lines().any(|l| l.starts_with(&new_kid) && l.contains("\tnext\t")), "{list}");
        assert!(list.lines().any(|l| l.contains("\tcurrent\t")), "{list}");
    }
}

backends! {
    async fn tokens_of_every_key_generation_verify_and_rotation_can_be_scheduled() {
        let app = TestApp::spawn_with(&[("KEY_ROTATION_INTERVAL", "2s")]).await;
        let (email, body) = app.new_user().await;
        let mut generations = vec![body["tokens"]["access_token"].as_str().expect("token").to_owned()];
        for _ in 0..2 {
            let output = app.env.run(&["keys", "rotate", "--now"], &[]);
            assert!(output.status.success());
            let kid = String::from_utf8_lossy(&output.stdout).split('\t').next().expect("kid").to_owned();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let tokens = app.session_of(&email).await;
                if crate::helpers::kid_of(&tokens.access) == kid {
                    generations.push(tokens.access);
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "the new key never signed");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
        for token in &generations {
            assert_eq!(app.get("/api/profile", Some(token)).await.status(), StatusCode::OK);
        }
        // Older keys carry a retirement date: their last token's expiry.
        let list = String::from_utf8_lossy(&app.env.run(&["keys", "list"], &[]).stdout).into_owned();
        let retiring = list.lines().filter(|l| !l.ends_with("\t-")).count();
        assert!(retiring >= 2, "{list}");
        // KEY_ROTATION_INTERVAL=2s publishes yet more keys by itself.
        crate::helpers::eventually(std::time::Duration::from_secs(90), || async {
            let jwks: serde_json::Value = app.get("/.well-known/jwks.json", None).await.json().await.expect("json");
            jwks["keys"].as_array().is_some_and(|k| k.len() > 3)
        })
        .await;
    }
}

backends! {
    async fn an_old_key_leaves_the_jwks_by_itself_once_its_last_token_expired() {
        let app = TestApp::spawn_with(&[("JWT_EXPIRATION", "1s")]).await;
        let (_, body) = app.new_user().await;
        let old = body["tokens"]["access_token"].as_str().expect("token").to_owned();
        let old_kid = crate::helpers::kid_of(&old);
        assert!(app.env.run(&["keys", "rotate", "--now"], &[]).status.success());
        // Still good within its lifetime (plus the minute of leeway)...
        assert_eq!(app.get("/api/profile", Some(&old)).await.status(), StatusCode::OK);
        // ...then the key retires by itself: out of the JWKS, its token dead.
        crate::helpers::eventually(std::time::Duration::from_secs(100), || async {
            let jwks: serde_json::Value = app.get("/.well-known/jwks.json", None).await.json().await.expect("json");
            !jwks.to_string().contains(&old_kid)
        })
        .await;
        assert_eq!(app.get("/api/profile", Some(&old)).await.status(), StatusCode::UNAUTHORIZED);
    }
}
