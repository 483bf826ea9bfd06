//! Equal timing of failed logins, in a test binary of its own so that it
//! runs alone (cargo runs test binaries one after another), not beside the
//! parallel black-box tests.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::{Duration, Instant};

use helpers::{PASSWORD, TestApp};
use reqwest::StatusCode;
use serde_json::json;

const TRIES: usize = 31;

async fn timed_login(
    app: &TestApp,
    from: &str,
    email: &str,
    password: &str,
    expect: StatusCode,
) -> Duration {
    let request = app
        .client
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", from)
        .json(&json!({"email": email, "password": password}));
    let start = Instant::now();
    let response = request.send().await.expect("request");
    let took = start.elapsed();
    assert_eq!(response.status(), expect, "{email}");
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Unknown e-mail, wrong password (argon2id and an imported bcrypt hash),
/// disabled account and locked pair: the same time, so none of them tells
/// an attacker that an account exists or what state it is in.
#[tokio::test]
async fn failed_logins_take_the_same_time_whatever_the_reason() {
    let app = TestApp::spawn_with(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    let (argon2_user, _) = app.new_user().await;
    let (bcrypt_user, _) = app.new_user().await;
    let (disabled_user, _) = app.new_user().await;
    let (locked_user, _) = app.new_user().await;
    let go_hash = bcrypt::hash("go-password", 10)
        .expect("bcrypt")
        .replacen("$2b$", "$2a$", 1);
    app.sql(&format!(
        "UPDATE users SET password_hash = '{go_hash}' WHERE email = '{bcrypt_user}'"
    ))
    .await;
    app.sql(&format!(
        "UPDATE users SET disabled = true WHERE email = '{disabled_user}'"
    ))
    .await;
    for _ in 0..5 {
        timed_login(
            &app,
            "192.0.2.200",
            &locked_user,
            "wrong password",
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }

    let mut samples: [Vec<Duration>; 5] = Default::default();
    for round in 0..TRIES {
        // A fresh address per failed try keeps the pair lock-out out of the
        // way of the categories that are not about it.
        let from = format!("198.51.{}.{}", round / 200, round % 200 + 1);
        let cases: [(&str, &str, StatusCode); 5] = [
            (
                "nobody-here@example.com",
                PASSWORD,
                StatusCode::UNAUTHORIZED,
            ),
            (&argon2_user, "wrong password", StatusCode::UNAUTHORIZED),
            (&bcrypt_user, "wrong password", StatusCode::UNAUTHORIZED),
            (&disabled_user, PASSWORD, StatusCode::FORBIDDEN),
            (&locked_user, PASSWORD, StatusCode::TOO_MANY_REQUESTS),
        ];
        // Interleaved, in a rotating order, so drift hits every case alike.
        for k in 0..cases.len() {
            let i = (k + round) % cases.len();
            let (email, password, expect) = cases[i];
            let address = if i == 4 { "192.0.2.200" } else { from.as_str() };
            samples[i].push(timed_login(&app, address, email, password, expect).await);
        }
    }
    let names = [
        "unknown e-mail",
        "wrong password",
        "wrong password (bcrypt)",
        "disabled account",
        "locked pair",
    ];
    let medians: Vec<Duration> = samples.into_iter().map(median).collect();
    let reference = medians[1].as_secs_f64();
    for (name, m) in names.iter().zip(&medians) {
        let ratio = m.as_secs_f64() / reference;
        eprintln!("{name}: median {m:?}, ratio {ratio:.3}");
        assert!(
            (0.8..=1.25).contains(&ratio),
            "{name}: median {m:?} against {reference:.4}s (ratio {ratio:.3})"
        );
    }
}

/// `forgot` answers an existing and an unknown address in the same time:
/// everything after validating the address happens after the answer.
#[tokio::test]
async fn forgot_answers_existing_and_unknown_addresses_alike() {
    let app = TestApp::spawn().await;
    let (known, _) = app.new_user().await;
    let mut samples: [Vec<Duration>; 2] = Default::default();
    for round in 0..TRIES {
        for k in 0..2 {
            let i = (k + round) % 2;
            let email = if i == 0 {
                known.as_str()
            } else {
                "nobody-at-all@example.com"
            };
            let request = app
                .client
                .post(app.url("/api/auth/password/forgot"))
                .json(&json!({"email": email}));
            let start = Instant::now();
            let response = request.send().await.expect("request");
            samples[i].push(start.elapsed());
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            // The work a known address starts after the answer (token,
            // mail) must not land on the next request's clock.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let [existing, unknown] = samples.map(median);
    let ratio = unknown.as_secs_f64() / existing.as_secs_f64();
    let gap = existing.abs_diff(unknown);
    eprintln!("forgot: existing {existing:?}, unknown {unknown:?}, ratio {ratio:.3}");
    // Both answers take well under a millisecond, where scheduler noise
    // alone moves a ratio by a third; a gap under 150 µs is within the
    // noise of one loopback round trip.
    assert!(
        (0.8..=1.25).contains(&ratio) || gap < Duration::from_micros(150),
        "existing {existing:?}, unknown {unknown:?}, ratio {ratio:.3}"
    );
}
