//! Several real server processes on one PostgreSQL (and Redis): what one
//! instance does holds on all of them.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    PASSWORD, TestApp, Tokens, assert_error, cluster, kid_of, refresh_all_at_once,
};

/// Polls `app` until it refuses `access` as revoked; the time it took.
async fn refused_after(app: &TestApp, access: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let status = app.get("/api/profile", Some(access)).await.status();
        if status == StatusCode::UNAUTHORIZED {
            return start.elapsed();
        }
        assert_eq!(status, StatusCode::OK);
        assert!(start.elapsed() < within, "still accepted after {within:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::test]
async fn a_logout_on_one_instance_is_refused_by_the_others_within_a_second() {
    let Some(apps) = cluster(3, true, &[]).await else {
        return;
    };
    let (email, _) = apps[0].new_user().await;
    let mut delays = Vec::new();
    for round in 0..200 {
        let (here, there) = (&apps[round % 3], &apps[(round + 1) % 3]);
        let tokens = here.session_of(&email).await;
        assert_eq!(
            there
                .get("/api/profile", Some(&tokens.access))
                .await
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            here.post_auth("/api/auth/logout", &tokens.access)
                .await
                .status(),
            StatusCode::NO_CONTENT
        );
        delays.push(refused_after(there, &tokens.access, Duration::from_secs(1)).await);
    }
    delays.sort();
    eprintln!(
        "logout propagation over Redis, 200 logouts: p50 {:?}, p99 {:?}, max {:?}",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays[delays.len() - 1]
    );
}

#[tokio::test]
async fn a_logout_all_reaches_every_instance_within_a_second() {
    let Some(apps) = cluster(2, true, &[]).await else {
        return;
    };
    let (email, _) = apps[0].new_user().await;
    let on_a = apps[0].session_of(&email).await;
    let on_b = apps[1].session_of(&email).await;
    assert_eq!(
        apps[0]
            .post_auth("/api/auth/logout-all", &on_a.access)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    refused_after(&apps[1], &on_b.access, Duration::from_secs(1)).await;
    refused_after(&apps[1], &on_a.access, Duration::from_secs(1)).await;
    assert_error(
        apps[1].refresh(&on_b.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
}

#[tokio::test]
async fn without_redis_instances_converge_by_polling() {
    let Some(apps) = cluster(2, false, &[]).await else {
        return;
    };
    let (email, _) = apps[0].new_user().await;
    let mut delays = Vec::new();
    for _ in 0..5 {
        let tokens = apps[0].session_of(&email).await;
        apps[0].post_auth("/api/auth/logout", &tokens.access).await;
        // The poll runs every second; a request may land just before it.
        delays.push(refused_after(&apps[1], &tokens.access, Duration::from_millis(2500)).await);
    }
    delays.sort();
    eprintln!(
        "logout propagation by database polling: max {:?}",
        delays[delays.len() - 1]
    );
}

#[tokio::test]
async fn sixteen_concurrent_refreshes_across_instances_get_one_pair() {
    let Some(apps) = cluster(3, true, &[]).await else {
        return;
    };
    let (_, body) = apps[0].new_user().await;
    let token = Tokens::of(&body["tokens"]).refresh;
    let pairs = refresh_all_at_once((0..16).map(|i| (&apps[i % 3], token.as_str()))).await;
    assert!(pairs.windows(2).all(|w| w[0] == w[1]), "{pairs:?}");
    let unspent: i64 = apps[0]
        .scalar("SELECT COUNT(*) FROM refresh_tokens WHERE spent_at IS NULL")
        .await;
    assert_eq!(unspent, 1, "exactly one successor");
    // The grace retry on yet another instance: the same pair again.
    let again = apps[2].refresh(&token).await;
    assert_eq!(
        Tokens::of(&again.json::<Value>().await.expect("json")),
        pairs[0]
    );
}

#[tokio::test]
async fn reuse_detected_on_one_instance_kills_the_session_on_all() {
    let Some(apps) = cluster(2, true, &[("REFRESH_GRACE", "1s")]).await else {
        return;
    };
    let (_, body) = apps[0].new_user().await;
    let stolen = Tokens::of(&body["tokens"]);
    let response = apps[0].refresh(&stolen.refresh).await;
    let legit = Tokens::of(&response.json::<Value>().await.expect("json"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_error(
        apps[1].refresh(&stolen.refresh).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_reused",
    )
    .await;
    refused_after(&apps[0], &legit.access, Duration::from_secs(1)).await;
    assert_error(
        apps[0].refresh(&legit.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
}

#[tokio::test]
async fn a_key_created_by_one_instance_verifies_on_the_others_at_once() {
    let Some(mut apps) = cluster(1, false, &[]).await else {
        return;
    };
    let database = apps[0].env.database.clone().expect("database");
    let master = apps[0]
        .env
        .env
        .iter()
        .find(|(k, _)| k == "PORTCULLIS_MASTER_KEY")
        .map(|(_, v)| v.clone())
        .expect("master key");
    // A second instance configured for ES256 generates and signs with a key
    // the first has never seen.
    let es256 = TestApp::start_in(crate::helpers::TestEnv::sharing(
        &database,
        &[
            ("PORTCULLIS_MASTER_KEY", &master),
            ("JWT_ALGORITHM", "ES256"),
        ],
    ))
    .await;
    apps.push(es256);
    let (email, _) = apps[0].new_user().await;
    let tokens = apps[1].session_of(&email).await;
    assert_eq!(tokens.claims()["sub"].as_str().map(str::len), Some(36));
    let response = apps[0].get("/api/auth/me", Some(&tokens.access)).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the unknown kid made it reload its keys"
    );
    let _ = PASSWORD;
}

#[tokio::test]
async fn a_key_rotated_on_one_instance_signs_and_verifies_on_all() {
    let Some(apps) = cluster(2, true, &[]).await else {
        return;
    };
    let (email, body) = apps[0].new_user().await;
    let old = Tokens::of(&body["tokens"]);
    let old_kid = kid_of(&old.access);

    let output = apps[0].env.run(&["keys", "rotate", "--now"], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let new_kid = String::from_utf8_lossy(&output.stdout)
        .split('\t')
        .next()
        .expect("kid")
        .to_owned();
    assert_ne!(new_kid, old_kid);

    // Within seconds every instance signs with the new key...
    for app in &apps {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let tokens = app.session_of(&email).await;
            if kid_of(&tokens.access) == new_kid {
                // ...and every instance verifies it, and the old tokens too.
                for other in &apps {
                    assert_eq!(
                        other
                            .get("/api/auth/me", Some(&tokens.access))
                            .await
                            .status(),
                        StatusCode::OK
                    );
                    assert_eq!(
                        other.get("/api/profile", Some(&old.access)).await.status(),
                        StatusCode::OK
                    );
                }
                break;
            }
            assert!(Instant::now() < deadline, "the rotated key never signed");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let jwks: Value = app
            .get("/.well-known/jwks.json", None)
            .await
            .json()
            .await
            .expect("json");
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .filter_map(|k| k["kid"].as_str())
            .collect();
        assert!(
            kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
            "{kids:?}"
        );
    }
}

#[tokio::test]
async fn a_revoked_key_stops_verifying_on_every_instance() {
    let Some(apps) = cluster(2, true, &[]).await else {
        return;
    };
    let (email, body) = apps[0].new_user().await;
    let leaked = Tokens::of(&body["tokens"]);
    let old_kid = kid_of(&leaked.access);
    let rotated = apps[0].env.run(&["keys", "rotate", "--now"], &[]);
    assert!(rotated.status.success());
    for app in &apps {
        assert_eq!(
            app.get("/api/profile", Some(&leaked.access)).await.status(),
            StatusCode::OK
        );
    }
    let revoked = apps[1].env.run(&["keys", "revoke", &old_kid], &[]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    for app in &apps {
        refused_after(app, &leaked.access, Duration::from_secs(3)).await;
        let jwks: Value = app
            .get("/.well-known/jwks.json", None)
            .await
            .json()
            .await
            .expect("json");
        assert!(!jwks.to_string().contains(&old_kid));
    }
    // Sessions go on with the new key.
    let fresh = apps[0].session_of(&email).await;
    assert_ne!(kid_of(&fresh.access), old_kid);
    assert_eq!(
        apps[1]
            .get("/api/profile", Some(&fresh.access))
            .await
            .status(),
        StatusCode::OK
    );
}
