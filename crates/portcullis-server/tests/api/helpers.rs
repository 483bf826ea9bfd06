//! `TestApp`: the real server as a child process, plus request helpers.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery staple";
/// The HS256 secret of apps spawned with [`TestApp::spawn_hs256`], so tests
/// can mint tokens the server accepts (expired ones, unknown users).
pub const HS256_SECRET: &str = "test-secret-for-black-box-tests-0123456789";

pub struct TestApp {
    pub address: String,
    pub data_dir: PathBuf,
    pub client: Client,
    env: Vec<(String, String)>,
    child: Child,
    output: Arc<Mutex<String>>,
}

/// A fresh, empty data directory that the test owns.
pub fn fresh_data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-test-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("create data dir");
    dir
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_portcullis")
}

/// The command with a clean, isolated environment for `data_dir`.
pub fn command(data_dir: &PathBuf, env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(binary());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", data_dir)
        .env("BIND", "127.0.0.1")
        .env("PORT", "0")
        .env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_hs256() -> Self {
        Self::spawn_with(&[("JWT_SECRET", HS256_SECRET)]).await
    }

    /// Starts on an existing data directory (e.g. one the CLI prepared).
    pub async fn start_in(data_dir: PathBuf) -> Self {
        Self::start(data_dir, Vec::new(), None)
    }

    pub async fn spawn_with(env: &[(&str, &str)]) -> Self {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::start(fresh_data_dir(), env, None)
    }

    fn start(data_dir: PathBuf, env: Vec<(String, String)>, client: Option<Client>) -> Self {
        let tls = env.iter().any(|(k, _)| k == "TLS_CERT");
        let mut child = command(&data_dir, &env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start portcullis");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut out = output.lock().expect("log lock");
                    out.push_str(&line);
                    out.push('\n');
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = loop {
            if let Some(addr) = listening_address(&output.lock().expect("log lock")) {
                break addr;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "portcullis exited with {status}:\n{}",
                    output.lock().expect("log lock")
                );
            }
            assert!(
                Instant::now() < deadline,
                "portcullis did not start:\n{}",
                output.lock().expect("log lock")
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let scheme = if tls { "https" } else { "http" };
        let client = client.unwrap_or_else(|| {
            Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client")
        });
        Self {
            address: format!("{scheme}://{address}"),
            data_dir,
            client,
            env,
            child,
            output,
        }
    }

    /// Same data directory and settings, new process (and a new port).
    pub async fn restart(mut self) -> Self {
        self.stop();
        let data_dir = std::mem::take(&mut self.data_dir);
        let env = std::mem::take(&mut self.env);
        let client = self.client.clone();
        std::mem::forget(self);
        Self::start(data_dir, env, Some(client))
    }

    /// Sends SIGTERM and waits for a graceful exit; returns its status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Everything the process printed so far (stdout and stderr).
    pub fn logs(&self) -> String {
        self.output.lock().expect("log lock").clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    pub async fn register(&self, email: &str, password: &str, name: &str) -> Response {
        self.post_json(
            "/api/auth/register",
            &json!({"email": email, "password": password, "name": name}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Registers a fresh user and returns (email, response body).
    pub async fn new_user(&self) -> (String, Value) {
        let email = format!("user-{}@example.com", Uuid::new_v4().simple());
        let response = self.register(&email, PASSWORD, "Test User").await;
        assert_eq!(response.status(), StatusCode::CREATED);
        (email, response.json().await.expect("json"))
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json(
            "/api/auth/refresh",
            &json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// POST with a bearer token and no body.
    pub async fn post_auth(&self, path: &str, token: &str) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// Logs `email` in again (a new session) and returns the tokens.
    pub async fn session_of(&self, email: &str) -> Tokens {
        let response = self.login(email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        Tokens::of(&response.json::<Value>().await.expect("json")["tokens"])
    }

    pub fn database(&self) -> PathBuf {
        self.data_dir.join("portcullis.db")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
        if !self.data_dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

fn listening_address(output: &str) -> Option<String> {
    let start = output.find("listening on http")?;
    let rest = &output[start..];
    let url_start = rest.find("://")? + 3;
    let host: String = rest[url_start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    Some(host)
}

/// Asserts the contract's error shape and returns the body.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    let got = response.status();
    let headers = response.headers().clone();
    let body: Value = response.json().await.expect("error bodies are JSON");
    assert_eq!(got, status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    if status == StatusCode::UNAUTHORIZED {
        let challenge = headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .expect("401 carries WWW-Authenticate");
        assert!(
            challenge.starts_with(r#"Bearer realm="portcullis""#),
            "{challenge}"
        );
        let token_error = matches!(code, "invalid_token" | "token_expired" | "token_revoked");
        assert_eq!(
            challenge.contains(r#"error="invalid_token""#),
            token_error,
            "{challenge}"
        );
    }
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        assert!(
            headers.contains_key("retry-after"),
            "{status} without Retry-After"
        );
    }
    body
}

/// Opens the app's SQLite file directly, as an operator or an import from
/// another system would; tests use it to set up states the API cannot reach
/// yet (a bcrypt hash from a Go system, a disabled account) and to inspect
/// what is stored.
pub async fn database(app: &TestApp) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(app.database());
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("open the app database")
}

/// A token pair from a `tokens` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl Tokens {
    pub fn of(tokens: &Value) -> Self {
        Self {
            access: tokens["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            refresh: tokens["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
        }
    }

    /// The access token's claims, read without verification.
    pub fn claims(&self) -> Value {
        use base64::Engine;
        let payload = self.access.split('.').nth(1).expect("payload");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64");
        serde_json::from_slice(&bytes).expect("json")
    }
}

/// Polls `check` until it holds or `within` passes; returns the time taken.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "condition not met within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
