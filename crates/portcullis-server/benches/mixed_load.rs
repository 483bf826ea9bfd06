//! A bounded mixed load across two instances on PostgreSQL + Redis:
//! register, login, profile, refresh and logout from many clients for
//! `MIXED_LOAD_SECONDS` (default 60), alternating instances, and after every
//! logout a check that the *other* instance refuses the logged-out token
//! within a second. Fails on any 5xx or any revocation not seen in time.
//!
//! `PORTCULLIS_TEST_PG_URL=… PORTCULLIS_TEST_REDIS_URL=… cargo bench -p portcullis-server --bench mixed_load`

#[path = "../tests/api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

#[derive(Default)]
struct Tally {
    /// (operation, status) → count
    statuses: BTreeMap<(&'static str, u16), u64>,
    latencies: BTreeMap<&'static str, Vec<Duration>>,
    revocations_checked: u64,
    revocations_late: u64,
}

impl Tally {
    fn record(&mut self, op: &'static str, status: StatusCode, took: Duration) {
        *self.statuses.entry((op, status.as_u16())).or_default() += 1;
        self.latencies.entry(op).or_default().push(took);
    }
}

async fn timed(
    tally: &Mutex<Tally>,
    op: &'static str,
    request: reqwest::RequestBuilder,
) -> Option<(StatusCode, Value)> {
    let start = Instant::now();
    let response = request.send().await.ok()?;
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    tally.lock().ok()?.record(op, status, start.elapsed());
    Some((status, body))
}

async fn client_loop(id: usize, urls: Arc<Vec<String>>, until: Instant, tally: Arc<Mutex<Tally>>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let email = format!("load-{id}-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = "mixed load passphrase";
    let register = http
        .post(format!("{}/api/auth/register", urls[id % 2]))
        .json(&json!({"email": email, "password": password, "name": format!("Client {id}")}));
    let Some((StatusCode::CREATED, _)) = timed(&tally, "register", register).await else {
        return;
    };
    let mut round = 0usize;
    while Instant::now() < until {
        round += 1;
        let (here, there) = (&urls[(id + round) % 2], &urls[(id + round + 1) % 2]);
        let login = http
            .post(format!("{here}/api/auth/login"))
            .json(&json!({"email": email, "password": password}));
        let Some((StatusCode::OK, body)) = timed(&tally, "login", login).await else {
            continue;
        };
        let mut access = body["tokens"]["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut refresh = body["tokens"]["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for step in 0..20 {
            let base = if step % 2 == 0 { here } else { there };
            if step % 5 == 4 {
                let request = http
                    .post(format!("{base}/api/auth/refresh"))
                    .json(&json!({"refresh_token": refresh}));
                if let Some((StatusCode::OK, pair)) = timed(&tally, "refresh", request).await {
                    access = pair["access_token"].as_str().unwrap_or_default().to_owned();
                    refresh = pair["refresh_token"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                }
            } else {
                let request = http.get(format!("{base}/api/profile")).bearer_auth(&access);
                timed(&tally, "profile", request).await;
            }
        }
        let logout = http
            .post(format!("{here}/api/auth/logout"))
            .bearer_auth(&access);
        if let Some((StatusCode::NO_CONTENT, _)) = timed(&tally, "logout", logout).await {
            let deadline = Instant::now() + Duration::from_secs(1);
            let mut refused = false;
            while Instant::now() < deadline {
                let check = http
                    .get(format!("{there}/api/profile"))
                    .bearer_auth(&access)
                    .send()
                    .await;
                if check.is_ok_and(|r| r.status() == StatusCode::UNAUTHORIZED) {
                    refused = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let mut t = tally.lock().expect("tally");
            t.revocations_checked += 1;
            if !refused {
                t.revocations_late += 1;
            }
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let seconds: u64 = std::env::var("MIXED_LOAD_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60);
        let clients: usize = std::env::var("MIXED_LOAD_CLIENTS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(32);
        let Some(apps) = helpers::cluster(2, true, &[]).await else {
            eprintln!("mixed_load needs PORTCULLIS_TEST_PG_URL and PORTCULLIS_TEST_REDIS_URL");
            return;
        };
        let urls = Arc::new(apps.iter().map(|a| a.address.clone()).collect::<Vec<_>>());
        let tally = Arc::new(Mutex::new(Tally::default()));
        let started = Instant::now();
        let until = started + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..clients)
            .map(|id| tokio::spawn(client_loop(id, urls.clone(), until, tally.clone())))
            .collect();
        for task in tasks {
            let _ = task.await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let tally = tally.lock().expect("tally");
        println!("mixed load: {clients} clients, 2 instances, PostgreSQL + Redis, {elapsed:.1} s");
        println!("| operation | requests | req/s | p50 | p99 | statuses |");
        println!("|---|---:|---:|---:|---:|---|");
        let mut server_errors = 0;
        for (op, latencies) in &tally.latencies {
            let mut sorted = latencies.clone();
            sorted.sort();
            let pick = |p: f64| sorted[((sorted.len() as f64 - 1.0) * p).round() as usize];
            let statuses: Vec<String> = tally
                .statuses
                .iter()
                .filter(|((o, _), _)| o == op)
                .map(|((_, s), n)| format!("{s}×{n}"))
                .collect();
            server_errors += tally
                .statuses
                .iter()
                .filter(|((o, s), _)| o == op && *s >= 500)
                .map(|(_, n)| n)
                .sum::<u64>();
            println!(
                "| {op} | {} | {:.0} | {:.1} ms | {:.1} ms | {} |",
                sorted.len(),
                sorted.len() as f64 / elapsed,
                pick(0.5).as_secs_f64() * 1000.0,
                pick(0.99).as_secs_f64() * 1000.0,
                statuses.join(" ")
            );
        }
        println!(
            "logouts checked on the other instance: {}, refused within 1 s: {}, late: {}",
            tally.revocations_checked,
            tally.revocations_checked - tally.revocations_late,
            tally.revocations_late
        );
        assert_eq!(server_errors, 0, "5xx answers under load");
        assert_eq!(tally.revocations_late, 0, "revocations not seen in time");
    });
}
