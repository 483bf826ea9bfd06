//! Fault tests, each against private PostgreSQL or Redis servers the test
//! starts itself (never the machine's shared ones): a dependency that goes
//! away must not hang requests, lose revocations or leave half-done writes.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    PASSWORD, PgDatabase, TestApp, TestEnv, Tokens, eventually, fresh_data_dir, pg_url,
};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Says why a fault test cannot run here; fails under `CI=true`.
fn unavailable(what: &str) -> bool {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} is required in CI"
    );
    eprintln!("skipping a fault test: {what} is not available");
    true
}

/// A redis-server of the test's own on a port of its own.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start() -> Option<Self> {
        let mut redis = Self {
            port: free_port(),
            child: None,
        };
        redis.resume().then_some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn resume(&mut self) -> bool {
        let Ok(child) = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            return false;
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "private redis did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A PostgreSQL cluster of the test's own, run as the `postgres` user.
struct PrivatePg {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl PrivatePg {
    fn start() -> Option<Self> {
        let dir = fresh_data_dir();
        let owned = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status();
        let init = Command::new("runuser")
            .args([
                "-u", "postgres", "--", "initdb", "-A", "trust", "-U", "postgres", "-D",
            ])
            .arg(dir.join("pg"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(owned, Ok(s) if s.success()) || !matches!(init, Ok(s) if s.success()) {
            let _ = std::fs::remove_dir_all(&dir);
            return None;
        }
        let mut pg = Self {
            dir,
            port: free_port(),
            child: None,
        };
        pg.resume();
        Some(pg)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn resume(&mut self) {
        let child = Command::new("runuser")
            .args(["-u", "postgres", "--", "postgres", "-D"])
            .arg(self.dir.join("pg"))
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-k",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start private postgres");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !Command::new("pg_isready")
            .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(Instant::now() < deadline, "private postgres did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it the hard way (SIGKILL to the postmaster's whole group is
    /// not needed: an immediate shutdown drops every connection at once).
    fn stop(&mut self) {
        let _ = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                "pg_ctl",
                "stop",
                "-m",
                "immediate",
                "-D",
            ])
            .arg(self.dir.join("pg"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn refused_within(app: &TestApp, access: &str, within: Duration) {
    eventually(within, || async {
        app.get("/api/profile", Some(access)).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
}

#[tokio::test]
async fn redis_going_away_loses_no_revocation() {
    if pg_url().is_none() && unavailable("PORTCULLIS_TEST_PG_URL") {
        return;
    }
    let Some(mut redis) = PrivateRedis::start() else {
        unavailable("redis-server");
        return;
    };
    let database = Arc::new(PgDatabase::create());
    let master = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32]);
    let url = redis.url();
    let settings = [
        ("PORTCULLIS_MASTER_KEY", master.as_str()),
        ("REDIS_URL", url.as_str()),
    ];
    let a = TestApp::start_in(TestEnv::sharing(&database, &settings)).await;
    let b = TestApp::start_in(TestEnv::sharing(&database, &settings)).await;
    eventually(Duration::from_secs(5), || async {
        b.get("/readyz", None).await.status() == StatusCode::OK
    })
    .await;
    let (email, _) = a.new_user().await;

    redis.kill();
    eventually(Duration::from_secs(5), || async {
        a.get("/readyz", None).await.status() == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    // Still serving: logins, refreshes, protected routes.
    let tokens = a.session_of(&email).await;
    assert_eq!(
        b.get("/api/profile", Some(&tokens.access)).await.status(),
        StatusCode::OK
    );
    assert_eq!(b.refresh(&tokens.refresh).await.status(), StatusCode::OK);
    // A logout made while Redis is down reaches the other instance by polling.
    let cut_off = a.session_of(&email).await;
    assert_eq!(
        a.post_auth("/api/auth/logout", &cut_off.access)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    refused_within(&b, &cut_off.access, Duration::from_millis(2500)).await;

    // Redis back: ready again, and logouts travel by Redis again.
    assert!(redis.resume());
    eventually(Duration::from_secs(10), || async {
        a.get("/readyz", None).await.status() == StatusCode::OK
            && b.get("/readyz", None).await.status() == StatusCode::OK
    })
    .await;
    let after = a.session_of(&email).await;
    assert_eq!(
        a.post_auth("/api/auth/logout", &after.access)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    refused_within(&b, &after.access, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_postgres_restart_gives_503s_then_recovers_by_itself() {
    let Some(mut pg) = PrivatePg::start() else {
        unavailable("initdb/postgres (PostgreSQL server binaries) with runuser");
        return;
    };
    let url = pg.url();
    let env = TestEnv {
        data_dir: fresh_data_dir(),
        database: None,
        env: vec![
            ("DATABASE_URL".into(), url),
            ("REQUEST_TIMEOUT".into(), "2s".into()),
        ],
    };
    let app = TestApp::start_in(env).await;
    let (email, body) = app.new_user().await;
    let tokens = Tokens::of(&body["tokens"]);

    pg.stop();
    let started = Instant::now();
    let response = app.login(&email, PASSWORD).await;
    let took = started.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(
        response.json::<Value>().await.expect("json")["code"],
        "unavailable"
    );
    assert!(
        took < Duration::from_secs(5),
        "answered in {took:?}, not hung"
    );
    assert_eq!(
        app.get("/readyz", None).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Verification needs no database: the token still works.
    assert_eq!(
        app.get("/api/profile", Some(&tokens.access)).await.status(),
        StatusCode::OK
    );
    for path in ["/api/auth/me", "/api/auth/sessions"] {
        let status = app.get(path, Some(&tokens.access)).await.status();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
    }

    pg.resume();
    eventually(Duration::from_secs(30), || async {
        app.login(&email, PASSWORD).await.status() == StatusCode::OK
    })
    .await;
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(&tokens.refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn sigkill_mid_refresh_leaves_no_session_half_rotated() {
    if pg_url().is_none() && unavailable("PORTCULLIS_TEST_PG_URL") {
        return;
    }
    let database = Arc::new(PgDatabase::create());
    let master = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [5u8; 32]);
    let settings = [("PORTCULLIS_MASTER_KEY", master.as_str())];
    let victim = TestApp::start_in(TestEnv::sharing(&database, &settings)).await;
    let (email, _) = victim.new_user().await;
    let mut sessions = Vec::new();
    for _ in 0..12 {
        sessions.push(victim.session_of(&email).await.refresh);
    }
    // Every session refreshes in a loop, each client keeping the last token
    // it received; the process is killed while they run.
    let known = Arc::new(std::sync::Mutex::new(sessions.clone()));
    let mut workers = Vec::new();
    for (i, first) in sessions.into_iter().enumerate() {
        let client = victim.client.clone();
        let url = victim.url("/api/auth/refresh");
        let known = known.clone();
        workers.push(tokio::spawn(async move {
            let mut token = first;
            loop {
                let Ok(response) = client
                    .post(&url)
                    .json(&serde_json::json!({"refresh_token": token}))
                    .send()
                    .await
                else {
                    return;
                };
                let Ok(body) = response.json::<Value>().await else {
                    return;
                };
                let Some(next) = body["refresh_token"].as_str() else {
                    return;
                };
                token = next.to_owned();
                known.lock().expect("lock")[i] = token.clone();
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let pid = victim.child_id().to_string();
    Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .expect("kill -KILL");
    for worker in workers {
        let _ = worker.await;
    }

    let rotations: i64 = victim
        .scalar("SELECT COUNT(*) FROM refresh_tokens WHERE spent_at IS NOT NULL")
        .await;
    assert!(
        rotations > 12,
        "the clients were refreshing when the kill came: {rotations}"
    );
    // The database holds whole rotations only.
    let half: i64 = victim
        .scalar(
            "SELECT COUNT(*) FROM refresh_tokens t WHERE t.spent_at IS NOT NULL AND NOT EXISTS
             (SELECT 1 FROM refresh_tokens s WHERE s.hash = t.successor_hash)",
        )
        .await;
    assert_eq!(half, 0, "a spent token without its successor");
    let forks: i64 = victim
        .scalar(
            "SELECT COUNT(*) FROM (SELECT session_id FROM refresh_tokens WHERE spent_at IS NULL
             GROUP BY session_id HAVING COUNT(*) > 1) f",
        )
        .await;
    assert_eq!(forks, 0, "a session with two live tokens");
    // And every client carries on, on another instance, with the last token
    // it saw: a rotation, or the grace replay of one whose answer was lost.
    let survivor = TestApp::start_in(TestEnv::sharing(&database, &settings)).await;
    let last = known.lock().expect("lock").clone();
    for token in last {
        let response = survivor.refresh(&token).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{:?}",
            response.text().await
        );
    }
}
