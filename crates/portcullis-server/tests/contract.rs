//! The server against its own OpenAPI document: schemathesis (from PyPI, in
//! the venv `.ci/run` makes) generates requests from `/openapi.json` and
//! fails on any server error or any answer the document does not describe.
//! A test binary of its own, so it runs alone rather than beside the
//! parallel black-box tests.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::TestApp;

const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/contract/schemathesis.toml"
);

/// Both passes together stay within this (seconds); each has its own
/// share, and `timeout` ends a run that overstays it.
const UNAUTHENTICATED_BUDGET: u32 = 90;
const AUTHENTICATED_BUDGET: u32 = 150;

/// One schemathesis run with every check; its report on failure.
async fn run(st: &str, app: &TestApp, budget: u32, extra: Vec<String>) {
    let mut args: Vec<String> = [
        "--kill-after=10",
        &(budget + 60).to_string(),
        st,
        "--config-file",
        CONFIG,
        "run",
        &app.url("/openapi.json"),
        "--checks",
        "all",
        "--seed",
        "20261127",
        "--max-examples",
        "25",
        "--phases",
        "examples,coverage,fuzzing",
        "--request-timeout",
        "10",
        "--max-time",
        &budget.to_string(),
        "--workers",
        "2",
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("timeout")
            .args(&args)
            .output()
            .expect("run schemathesis")
    })
    .await
    .expect("join");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found the server breaking its contract ({}):\n{report}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // The warnings and the summary: what was covered, and how.
    let tail = report
        .find("WARNINGS")
        .or_else(|| report.find("SUMMARY"))
        .map_or("", |start| &report[start..]);
    eprintln!("{tail}");
}

#[tokio::test]
async fn the_server_keeps_its_openapi_contract() {
    let Some(st) = helpers::tool_from_env("PORTCULLIS_TEST_SCHEMATHESIS", "schemathesis's `st`")
    else {
        return;
    };
    // Budgets opened wide, so that generated requests meet the rules, not
    // the rate limits.
    let app = TestApp::spawn_with(&[
        ("LOCKOUT_THRESHOLD", "1000000"),
        ("ACCOUNT_FAILURE_LIMIT", "1000000/h"),
        ("MAIL_RATE_PER_RECIPIENT", "1000000/h"),
        ("MAIL_RATE_GLOBAL", "1000000/h"),
    ])
    .await;
    // Without credentials: every operation, the destructive ones included
    // (they must refuse).
    run(&st, &app, UNAUTHENTICATED_BUDGET, Vec::new()).await;
    // As a live administrator, minus what would end the pass's own session
    // (schemathesis reuses ids it saw in earlier answers, its own session's
    // and user's among them) or change the server under it.
    let admin = app.admin().await;
    let excluded = [
        ("--exclude-path", "/api/auth/logout"),
        ("--exclude-path", "/api/auth/logout-all"),
        ("--exclude-path", "/api/admin/keys/rotate"),
        ("--exclude-path-regex", "^/api/admin/keys/.*/revoke$"),
        ("--exclude-operation-id", "delete_me"),
        ("--exclude-operation-id", "delete_user"),
        ("--exclude-operation-id", "update_user"),
        ("--exclude-operation-id", "delete"),
        ("--exclude-operation-id", "end_session"),
    ];
    let mut extra = vec![
        "--header".to_owned(),
        format!("Authorization: Bearer {}", admin.access),
    ];
    for (flag, value) in excluded {
        extra.push(flag.to_owned());
        extra.push(value.to_owned());
    }
    run(&st, &app, AUTHENTICATED_BUDGET, extra).await;
    // Still alive and still the administrator's session: nothing above may
    // have ended it.
    let me = app.get("/api/auth/me", Some(&admin.access)).await;
    assert_eq!(me.status(), reqwest::StatusCode::OK);
}
