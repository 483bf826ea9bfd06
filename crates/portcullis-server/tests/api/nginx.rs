//! Forward auth behind a real nginx (Debian's, `auth_request` module) run
//! with the configuration `docs/gateways/nginx.conf` documents, in front of
//! a small upstream that echoes the identity headers it receives.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, Tokens, mint_hs256};

const NGINX: &str = "/usr/sbin/nginx";
const DOCUMENTED: &str = include_str!("../../../../docs/gateways/nginx.conf");

/// The service behind the gateway: counts the requests that reach it and
/// echoes the identity headers nginx set.
struct Upstream {
    address: String,
    hits: Arc<AtomicUsize>,
}

impl Upstream {
    async fn start() -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let echo = move |headers: HeaderMap| {
            counter.fetch_add(1, Ordering::SeqCst);
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let body = json!({
                "id": header("x-user-id"),
                "email": header("x-user-email"),
                "roles": header("x-user-roles"),
            });
            async move { axum::Json(body) }
        };
        let router = axum::Router::new().fallback(echo);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let address = listener.local_addr().expect("address").to_string();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { address, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// nginx in the foreground with a prefix directory of its own.
struct Nginx {
    child: Child,
    prefix: PathBuf,
    base: String,
}

impl Nginx {
    /// `None` (saying why) where Debian's nginx is not installed; under
    /// `CI=true` that is a failure.
    async fn start(portcullis: &str, upstream: &str) -> Option<Self> {
        if !Path::new(NGINX).exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "nginx is required in CI"
            );
            eprintln!("skipping the nginx test: Debian's nginx is not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let server = substitute(
            DOCUMENTED,
            &[
                ("server 127.0.0.1:8080;", &format!("server {portcullis};")),
                ("server 127.0.0.1:9000;", &format!("server {upstream};")),
                ("listen 8000;", &format!("listen 127.0.0.1:{port};")),
            ],
        );
        let prefix =
            std::env::temp_dir().join(format!("portcullis-nginx-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(prefix.join("temp")).expect("nginx prefix");
        let p = prefix.display();
        let config = format!(
            "daemon off;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log info;\n\
             events {{ worker_connections 128; }}\n\
             http {{\n\
             access_log {p}/access.log;\n\
             client_body_temp_path {p}/temp/body;\nproxy_temp_path {p}/temp/proxy;\n\
             fastcgi_temp_path {p}/temp/fastcgi;\nuwsgi_temp_path {p}/temp/uwsgi;\n\
             scgi_temp_path {p}/temp/scgi;\n\
             {server}\n}}\n"
        );
        let config_path = prefix.join("nginx.conf");
        std::fs::write(&config_path, config).expect("write nginx.conf");
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(&prefix)
            .arg("-e")
            .arg(prefix.join("error.log"))
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let mut nginx = Self {
            child,
            prefix,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            let exited = nginx.child.try_wait().ok().flatten();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "nginx did not start ({exited:?}):\n{}",
                nginx.error_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(nginx)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    /// SIGTERM: the master stops its workers (SIGKILL would leave them).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !matches!(self.child.try_wait(), Ok(Some(_))) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}

/// Replaces each placeholder, which must occur in the documented file, so
/// that an edit of the documentation cannot silently detach it from the test.
fn substitute(text: &str, pairs: &[(&str, &str)]) -> String {
    pairs.iter().fold(text.to_owned(), |text, (from, to)| {
        assert!(
            text.contains(from),
            "docs/gateways/nginx.conf lost `{from}`"
        );
        text.replace(from, to)
    })
}

/// The upstream, nginx in front of it and `app`, and a client; `None` where
/// nginx is not installed (after saying so).
async fn gateway(app: &TestApp) -> Option<(Upstream, Nginx, Client)> {
    let upstream = Upstream::start().await;
    let portcullis = app.address.trim_start_matches("http://").to_owned();
    let nginx = Nginx::start(&portcullis, &upstream.address).await?;
    let client = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    Some((upstream, nginx, client))
}

async fn login_through(
    client: &Client,
    nginx: &Nginx,
    path: &str,
    email: &str,
) -> reqwest::Response {
    let login = client
        .post(nginx.url(path))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login through nginx");
    assert_eq!(login.status(), StatusCode::OK);
    login
}

#[tokio::test]
async fn nginx_forward_auth() {
    let app = TestApp::spawn_with(&[
        ("JWT_SECRET", crate::helpers::HS256_SECRET),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let Some((upstream, nginx, client)) = gateway(&app).await else {
        return;
    };

    // Login through the gateway: Portcullis's own routes pass through.
    let (email, _) = app.new_user().await;
    let login = login_through(&client, &nginx, "/api/auth/login", &email).await;
    let body: Value = login.json().await.expect("json");
    let tokens = Tokens::of(&body["tokens"]);
    let user_id = body["user"]["id"].as_str().expect("id").to_owned();

    // A valid token reaches the service with the user's headers; the ones
    // the client forged are replaced.
    let response = client
        .get(nginx.url("/orders/7"))
        .bearer_auth(&tokens.access)
        .header("x-user-id", "forged-id")
        .header("x-user-email", "boss@example.com")
        .header("x-user-roles", "admin")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK, "{}", nginx.error_log());
    let seen: Value = response.json().await.expect("json");
    assert_eq!(
        seen,
        json!({"id": user_id, "email": email, "roles": "user"})
    );
    assert_eq!(upstream.hits(), 1);

    // No token, a tampered one, an expired one: never reach the service.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let mut claims = tokens.claims();
    claims["iat"] = json!(now - 3600);
    claims["exp"] = json!(now - 60);
    let expired = mint_hs256(&claims);
    let tampered = format!("{}x", tokens.access);
    for token in [None, Some(tampered.as_str()), Some(expired.as_str())] {
        let mut request = client.get(nginx.url("/orders/7"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        // nginx hands the challenge on from the subrequest.
        assert!(response.headers().contains_key("www-authenticate"));
    }
    assert_eq!(upstream.hits(), 1);

    // A role requirement: a plain user is turned away, an admin gets in.
    let admin = client
        .get(nginx.url("/admin/reports"))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .expect("request");
    assert_eq!(admin.status(), StatusCode::FORBIDDEN);
    assert_eq!(upstream.hits(), 1);
    let root = app.admin().await;
    let admin = client
        .get(nginx.url("/admin/reports"))
        .bearer_auth(&root.access)
        .send()
        .await
        .expect("request");
    assert_eq!(admin.status(), StatusCode::OK);
    assert_eq!(
        admin.json::<Value>().await.expect("json")["roles"],
        "user,admin"
    );
    assert_eq!(upstream.hits(), 2);

    // Nothing is cached: after a logout the very same token is refused on
    // the next request and every one after it.
    let logout = client
        .post(nginx.url("/api/auth/logout"))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .expect("logout through nginx");
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    for _ in 0..5 {
        let response = client
            .get(nginx.url("/orders/7"))
            .bearer_auth(&tokens.access)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(upstream.hits(), 2);
}

/// Browser sessions behind the gateway: nginx hands the original method on,
/// so a cookie-authenticated POST needs the CSRF header, a GET does not.
#[tokio::test]
async fn nginx_forward_auth_with_cookies() {
    let app = TestApp::spawn_with(&[("COOKIE_SECURE", "false")]).await;
    let Some((upstream, nginx, client)) = gateway(&app).await else {
        return;
    };
    let (email, _) = app.new_user().await;
    let login = login_through(&client, &nginx, "/api/auth/login?mode=cookie", &email).await;
    let cookies = crate::helpers::Jar::from(login.headers());
    let (jar, csrf) = (cookies.header(), cookies.csrf);

    let get = client
        .get(nginx.url("/notes"))
        .header("cookie", &jar)
        .send()
        .await
        .expect("request");
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(
        get.json::<Value>().await.expect("json")["email"],
        email.as_str()
    );

    let forged = client
        .post(nginx.url("/notes"))
        .header("cookie", &jar)
        .json(&json!({"text": "from another site"}))
        .send()
        .await
        .expect("request");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(upstream.hits(), 1);

    let posted = client
        .post(nginx.url("/notes"))
        .header("cookie", &jar)
        .header("x-csrf-token", &csrf)
        .json(&json!({"text": "mine"}))
        .send()
        .await
        .expect("request");
    assert_eq!(posted.status(), StatusCode::OK);
    assert_eq!(upstream.hits(), 2);
}
