//! `TestApp`: the real server as a child process, on SQLite or PostgreSQL,
//! plus request helpers.

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

/// The database a test runs on. Each test body runs once per backend (see
/// `backends!`); the PostgreSQL run skips, saying so, where
/// `PORTCULLIS_TEST_PG_URL` is unset, and fails under `CI=true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

tokio::task_local! {
    static BACKEND: Backend;
}

pub fn backend() -> Backend {
    BACKEND.try_with(|b| *b).unwrap_or(Backend::Sqlite)
}

/// Runs a test body on `backend`, or explains why it cannot.
pub async fn on(backend: Backend, body: impl std::future::Future<Output = ()>) {
    if backend == Backend::Postgres && pg_url().is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "PORTCULLIS_TEST_PG_URL must be set in CI"
        );
        eprintln!("skipping the PostgreSQL run: PORTCULLIS_TEST_PG_URL is not set");
        return;
    }
    BACKEND.scope(backend, body).await;
}

/// Declares tests that run once on SQLite and once on PostgreSQL with one
/// body each: `backends! { async fn name() { ... } }`.
#[macro_export]
macro_rules! backends {
    ($(async fn $name:ident() $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body() $body

            #[tokio::test]
            async fn sqlite() {
                $crate::helpers::on($crate::helpers::Backend::Sqlite, body()).await;
            }

            #[tokio::test]
            async fn postgres() {
                $crate::helpers::on($crate::helpers::Backend::Postgres, body()).await;
            }
        }
    )*};
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn pg_url() -> Option<String> {
    std::env::var("PORTCULLIS_TEST_PG_URL")
        .ok()
        .filter(|v| !v.is_empty())
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Runs SQL on the server's maintenance database, on a runtime of its own
/// (callers may be inside a test's runtime or in `Drop`).
fn admin_sql(statements: Vec<String>) {
    admin(move |_| statements);
}

/// Runs `plan` (given the names of databases left behind by earlier runs)
/// and then the statements it returns, on the maintenance database.
fn admin(plan: impl FnOnce(Vec<String>) -> Vec<String> + Send + 'static) {
    let url = pg_url().expect("PostgreSQL URL");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
                .await
                .expect("connect to PORTCULLIS_TEST_PG_URL");
            let leftovers: Vec<String> = sqlx::query_scalar(
                "SELECT datname::text FROM pg_database WHERE datname LIKE 'pctpl\\_%' OR datname LIKE 'pctest\\_%'",
            )
            .fetch_all(&mut conn)
            .await
            .expect("list databases");
            for sql in plan(leftovers) {
                let mut attempts = 0;
                loop {
                    match sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(&mut conn).await {
                        Ok(_) => break,
                        // CREATE DATABASE … TEMPLATE refuses while another
                        // copy is being made; a moment later it works.
                        Err(e) if attempts < 100 && e.to_string().contains("being accessed by other users") => {
                            attempts += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(e) => panic!("{sql}: {e}"),
                    }
                }
            }
        });
    })
    .join()
    .expect("admin SQL thread");
}

/// A migrated template database, made once per test run by the binary's own
/// `migrate`; each test copies it, which is much cheaper than migrating.
fn template() -> &'static str {
    static TEMPLATE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let name = format!("pctpl_{}_{}", unix_now(), Uuid::new_v4().simple());
        // Databases of earlier runs that were killed before cleaning up: an
        // hour old at least, so a run going on beside this one keeps its own.
        let created = name.clone();
        admin(move |leftovers| {
            let mut statements = Vec::new();
            let stale = |name: &str| {
                name.split('_')
                    .nth(1)
                    .and_then(|t| t.parse::<u64>().ok())
                    .is_none_or(|t| t + 3600 < unix_now())
            };
            for old in leftovers.into_iter().filter(|n| stale(n)) {
                statements.push(format!("ALTER DATABASE \"{old}\" WITH IS_TEMPLATE false"));
                statements.push(format!("DROP DATABASE IF EXISTS \"{old}\" WITH (FORCE)"));
            }
            statements.push(format!("CREATE DATABASE \"{created}\""));
            statements
        });
        let dir = fresh_data_dir();
        let output = Command::new(binary())
            .env_clear()
            .env("DATA_DIR", &dir)
            .env(
                "DATABASE_URL",
                with_database(&pg_url().expect("url"), &name),
            )
            .arg("migrate")
            .output()
            .expect("run migrate");
        assert!(
            output.status.success(),
            "migrate: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let _ = std::fs::remove_dir_all(dir);
        admin_sql(vec![format!(
            "ALTER DATABASE \"{name}\" WITH IS_TEMPLATE true"
        )]);
        name
    })
}

/// One test's PostgreSQL database, dropped with it.
#[derive(Debug)]
pub struct PgDatabase {
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub fn create() -> Self {
        let name = format!("pctest_{}_{}", unix_now(), Uuid::new_v4().simple());
        admin_sql(vec![format!(
            "CREATE DATABASE \"{name}\" TEMPLATE \"{}\"",
            template()
        )]);
        let url = with_database(&pg_url().expect("url"), &name);
        Self { name, url }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        admin_sql(vec![format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        )]);
    }
}

/// Where one server lives: its data directory, its database (on the
/// PostgreSQL backend) and its settings. Outlives restarts.
#[derive(Debug)]
pub struct TestEnv {
    pub data_dir: PathBuf,
    pub database: Option<Arc<PgDatabase>>,
    pub env: Vec<(String, String)>,
}

impl TestEnv {
    pub fn new(env: &[(&str, &str)]) -> Self {
        let database = (backend() == Backend::Postgres).then(|| Arc::new(PgDatabase::create()));
        Self {
            data_dir: fresh_data_dir(),
            database,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// One more instance on the same database (a cluster member).
    pub fn sharing(database: &Arc<PgDatabase>, env: &[(&str, &str)]) -> Self {
        Self {
            data_dir: fresh_data_dir(),
            database: Some(database.clone()),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The binary with a clean environment: this env's settings only.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(binary());
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATA_DIR", &self.data_dir)
            .env("BIND", "127.0.0.1")
            .env("PORT", "0")
            .env("RUST_LOG", "info")
            .env("DATABASE_MAX_CONNECTIONS", "4")
            // Every test client comes from 127.0.0.1: per-address budgets
            // are opened wide except in the tests about them, which set
            // their own.
            .env("LOGIN_RATE_PER_ADDRESS", "100000/s")
            .env("SIGNUP_RATE_PER_ADDRESS", "100000/s");
        if let Some(db) = &self.database {
            cmd.env("DATABASE_URL", &db.url);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs a one-off command (a CLI subcommand) to completion.
    pub fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> std::process::Output {
        let mut cmd = self.command();
        cmd.args(args);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().expect("run portcullis")
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if !self.data_dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: Client,
    pub env: TestEnv,
    child: Child,
    output: Arc<Mutex<String>>,
}

/// A fresh, empty directory that the test owns.
pub fn fresh_data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-test-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("create data dir");
    dir
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_portcullis")
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_hs256() -> Self {
        Self::spawn_with(&[("JWT_SECRET", HS256_SECRET)]).await
    }

    pub async fn spawn_with(env: &[(&str, &str)]) -> Self {
        Self::start(TestEnv::new(env), None)
    }

    /// Starts on an existing environment (e.g. one the CLI prepared).
    pub async fn start_in(env: TestEnv) -> Self {
        Self::start(env, None)
    }

    fn start(env: TestEnv, client: Option<Client>) -> Self {
        let tls = env.env.iter().any(|(k, _)| k == "TLS_CERT");
        let mut child = env
            .command()
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
            client,
            env,
            child,
            output,
        }
    }

    /// Same data directory, database and settings; a new process and port.
    pub async fn restart(self) -> Self {
        let client = self.client.clone();
        Self::start(self.into_env(), Some(client))
    }

    /// Stops the process and hands back its environment.
    pub fn into_env(mut self) -> TestEnv {
        self.stop();
        std::mem::replace(
            &mut self.env,
            TestEnv {
                data_dir: PathBuf::new(),
                database: None,
                env: Vec::new(),
            },
        )
    }

    pub fn data_dir(&self) -> &PathBuf {
        &self.env.data_dir
    }

    /// Runs SQL on the app's database, as an operator or an import from
    /// another system would; tests use it to set up states the API cannot
    /// reach yet (a bcrypt hash from a Go system, a disabled account). The
    /// statement must be valid on both SQLite and PostgreSQL.
    pub async fn sql(&self, statement: &str) {
        let statement = sqlx::AssertSqlSafe(statement.to_owned());
        match &self.env.database {
            Some(db) => {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
                    .await
                    .expect("connect");
                sqlx::query(statement)
                    .execute(&mut conn)
                    .await
                    .expect("sql");
            }
            None => {
                let mut conn = self.sqlite().await;
                sqlx::query(statement)
                    .execute(&mut conn)
                    .await
                    .expect("sql");
            }
        }
    }

    /// One value (a count, a hash) read from the app's database.
    pub async fn scalar<T>(&self, query: &str) -> T
    where
        T: Send
            + Unpin
            + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>
            + for<'r> sqlx::Decode<'r, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>,
    {
        let query = sqlx::AssertSqlSafe(query.to_owned());
        match &self.env.database {
            Some(db) => {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
                    .await
                    .expect("connect");
                sqlx::query_scalar(query)
                    .fetch_one(&mut conn)
                    .await
                    .expect("query")
            }
            None => {
                let mut conn = self.sqlite().await;
                sqlx::query_scalar(query)
                    .fetch_one(&mut conn)
                    .await
                    .expect("query")
            }
        }
    }

    async fn sqlite(&self) -> sqlx::SqliteConnection {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(self.sqlite_file())
            .busy_timeout(Duration::from_secs(5));
        <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options)
            .await
            .expect("open the app database")
    }

    pub fn sqlite_file(&self) -> PathBuf {
        self.env.data_dir.join("portcullis.db")
    }

    /// Everything the app stores, as text: the data directory's files (but
    /// the master key) and, on PostgreSQL, every row of every table.
    pub async fn stored(&self) -> String {
        let mut stored = Vec::new();
        for entry in std::fs::read_dir(&self.env.data_dir).expect("data dir") {
            let path = entry.expect("entry").path();
            // The outbox holds mail, which is meant to carry its links.
            if path.is_file() && path.extension().is_none_or(|e| e != "key") {
                stored.extend(std::fs::read(&path).expect("read"));
            }
        }
        let mut text = String::from_utf8_lossy(&stored).into_owned();
        if self.env.database.is_some() {
            for table in [
                "users",
                "sessions",
                "refresh_tokens",
                "refresh_grace",
                "revocations",
                "signing_keys",
                "meta",
            ] {
                let rows: Option<String> = self
                    .scalar(&format!("SELECT string_agg(t::text, ' ') FROM {table} t"))
                    .await;
                text.push_str(&rows.unwrap_or_default());
            }
        }
        text
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

    pub fn child_id(&self) -> u32 {
        self.child.id()
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

    /// Rotates in a key that signs at once (`?now=true`), as `admin`.
    pub async fn rotate_key_now(&self, admin: &str) {
        let response = self
            .client
            .post(self.url("/api/admin/keys/rotate?now=true"))
            .bearer_auth(admin)
            .send()
            .await
            .expect("rotate");
        assert_eq!(response.status(), StatusCode::OK);
    }

    /// Revokes key `kid`, as `admin`.
    pub async fn revoke_key(&self, admin: &str, kid: &str) {
        let response = self
            .client
            .post(self.url(&format!("/api/admin/keys/{kid}/revoke")))
            .bearer_auth(admin)
            .send()
            .await
            .expect("revoke");
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }

    /// Creates `root@example.com`, an administrator, with the CLI (as an
    /// operator would) and signs in as it.
    pub async fn admin(&self) -> Tokens {
        let output = self.env.run(
            &[
                "user",
                "create",
                "--email",
                "root@example.com",
                "--password",
                PASSWORD,
                "--role",
                "admin",
            ],
            &[],
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.session_of("root@example.com").await
    }

    /// Logs `email` in again (a new session) and returns the tokens.
    pub async fn session_of(&self, email: &str) -> Tokens {
        let response = self.login(email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        Tokens::of(&response.json::<Value>().await.expect("json")["tokens"])
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
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
/// Sends each (instance, refresh token) refresh at once; each must answer
/// 200. Returns the pairs in the order given.
pub async fn refresh_all_at_once<'a>(
    requests: impl IntoIterator<Item = (&'a TestApp, &'a str)>,
) -> Vec<Tokens> {
    let requests: Vec<_> = requests
        .into_iter()
        .map(|(app, token)| {
            let client = app.client.clone();
            let url = app.url("/api/auth/refresh");
            let body = json!({"refresh_token": token});
            tokio::spawn(async move { client.post(url).json(&body).send().await.expect("request") })
        })
        .collect();
    let mut pairs = Vec::new();
    for request in requests {
        let response = request.await.expect("join");
        assert_eq!(response.status(), StatusCode::OK);
        pairs.push(Tokens::of(&response.json::<Value>().await.expect("json")));
    }
    pairs
}

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

/// Several instances on one PostgreSQL database (and, with `redis`, one
/// Redis key prefix), sharing a master key. `None`, after saying why, when
/// the services are not configured; under `CI=true` that is a failure.
pub async fn cluster(size: usize, redis: bool, env: &[(&str, &str)]) -> Option<Vec<TestApp>> {
    let redis_url = std::env::var("PORTCULLIS_TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty());
    let missing = match (pg_url(), redis, &redis_url) {
        (None, _, _) => Some("PORTCULLIS_TEST_PG_URL"),
        (_, true, None) => Some("PORTCULLIS_TEST_REDIS_URL"),
        _ => None,
    };
    if let Some(variable) = missing {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{variable} must be set in CI"
        );
        eprintln!("skipping a multi-instance test: {variable} is not set");
        return None;
    }
    let database = Arc::new(PgDatabase::create());
    let master_key = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        Uuid::new_v4().as_bytes().repeat(2),
    );
    let prefix = format!("pctest:{}:", Uuid::new_v4().simple());
    let mut settings: Vec<(&str, &str)> = vec![("PORTCULLIS_MASTER_KEY", &master_key)];
    if redis {
        settings.push(("REDIS_URL", redis_url.as_deref().unwrap_or_default()));
        settings.push(("REDIS_KEY_PREFIX", &prefix));
    }
    settings.extend_from_slice(env);
    let mut apps = Vec::new();
    for _ in 0..size {
        apps.push(TestApp::start_in(TestEnv::sharing(&database, &settings)).await);
    }
    Some(apps)
}

/// The `kid` in a token's header.
pub fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().expect("header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("b64");
    serde_json::from_slice::<Value>(&bytes).expect("json")["kid"]
        .as_str()
        .expect("kid")
        .to_owned()
}

/// Signs arbitrary claims with [`HS256_SECRET`], as a holder of a leaked
/// secret could.
pub fn mint_hs256(claims: &Value) -> String {
    let claims: portcullis_token::Claims = portcullis_token::Claims {
        iss: claims["iss"].as_str().unwrap_or_default().into(),
        sub: claims["sub"].as_str().unwrap_or_default().into(),
        aud: portcullis_token::Audience::from(claims["aud"].as_str().unwrap_or_default()),
        exp: claims["exp"].as_i64().unwrap_or_default(),
        iat: claims["iat"].as_i64().unwrap_or_default(),
        nbf: claims["nbf"].as_i64(),
        jti: uuid::Uuid::new_v4().to_string(),
        sid: claims["sid"].as_str().unwrap_or_default().into(),
        email: claims["email"].as_str().unwrap_or_default().into(),
        name: claims["name"].as_str().unwrap_or_default().into(),
        roles: serde_json::from_value(claims["roles"].clone()).unwrap_or_default(),
    };
    portcullis_token::SigningKey::from_secret(HS256_SECRET.as_bytes())
        .expect("secret")
        .sign(&claims)
        .expect("sign")
}

/// The cookies a response sets: name → (value, attributes).
pub fn set_cookies(headers: &reqwest::header::HeaderMap) -> Vec<(String, String, String)> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|line| {
            let (pair, attributes) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                name.trim().to_owned(),
                value.trim().to_owned(),
                attributes.to_owned(),
            )
        })
        .collect()
}

pub fn cookie<'a>(
    cookies: &'a [(String, String, String)],
    name: &str,
) -> &'a (String, String, String) {
    cookies
        .iter()
        .find(|c| c.0 == name)
        .unwrap_or_else(|| panic!("no {name} cookie in {cookies:?}"))
}

/// A browser's jar, kept by hand so the tests choose exactly what is sent.
#[derive(Debug, Clone)]
pub struct Jar {
    pub access: String,
    pub refresh: String,
    pub csrf: String,
}

impl Jar {
    pub fn from(headers: &reqwest::header::HeaderMap) -> Self {
        let cookies = set_cookies(headers);
        Self {
            access: cookie(&cookies, "access_token").1.clone(),
            refresh: cookie(&cookies, "refresh_token").1.clone(),
            csrf: cookie(&cookies, "csrf_token").1.clone(),
        }
    }

    pub fn header(&self) -> String {
        format!(
            "access_token={}; refresh_token={}; csrf_token={}",
            self.access, self.refresh, self.csrf
        )
    }
}

/// One sample line: `name{k="v",...} value`.
fn parse(line: &str) -> Option<(String, std::collections::BTreeMap<String, String>, f64)> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (series, ""),
    };
    let labels = labels
        .split("\",")
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once("=\"")?;
            Some((k.to_owned(), v.trim_end_matches('"').to_owned()))
        })
        .collect();
    Some((name.to_owned(), labels, value))
}

/// The sum of every sample of `name` whose labels include `labels`; `None`
/// when there is none.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(parse)
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

/// A tool a test needs, named by the environment variable `var`: `None`,
/// after saying why, where it is not set; under `CI=true` that fails.
pub fn tool_from_env(var: &str, what: &str) -> Option<String> {
    let found = std::env::var(var).ok();
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{var} ({what}) must be set in CI"
        );
        eprintln!("skipping: {var} ({what}) is not set");
    }
    found
}
