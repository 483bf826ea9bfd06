//! Administration: accounts, sessions, keys (API.md, Admin endpoints).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backends;
use crate::helpers::{PASSWORD, TestApp, Tokens, assert_error};

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request")
}

backends! {
    async fn only_live_admins_get_in() {
        let app = TestApp::spawn().await;
        let admin = app.admin().await;
        let (_, body) = app.new_user().await;
        let user = Tokens::of(&body["tokens"]);
        assert_eq!(call(&app, Method::GET, "/api/admin/users", &admin.access, None).await.status(), StatusCode::OK);
        for path in ["/api/admin/users", "/api/admin/keys"] {
            assert_error(call(&app, Method::GET, path, &user.access, None).await, StatusCode::FORBIDDEN, "forbidden").await;
        }
        assert_error(app.get("/api/admin/users", None).await, StatusCode::UNAUTHORIZED, "missing_token").await;
        // A logged-out admin session is no admin, even with an unexpired token
        // (the token itself is refused first).
        app.post_auth("/api/auth/logout", &admin.access).await;
        assert_error(call(&app, Method::GET, "/api/admin/users", &admin.access, None).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
    }

    async fn listing_searching_and_paging_users() {
        let app = TestApp::spawn().await;
        let admin = app.admin().await;
        for i in 0..5 {
            app.register(&format!("pager-{i}@example.com"), PASSWORD, "Pager").await;
        }
        let page: Value = call(&app, Method::GET, "/api/admin/users?email=PAGER-&limit=2", &admin.access, None).await.json().await.expect("json");
        assert_eq!(page["users"].as_array().expect("users").len(), 2);
        let first = page["users"][0].clone();
        assert_eq!(first["email"], "pager-0@example.com");
        assert_eq!(first["disabled"], false);
        assert_eq!(first["locked"], false);
        assert!(first["roles"].is_array() && first["created_at"].is_string());
        let mut seen = 2;
        let mut cursor = page["next_cursor"].as_str().expect("cursor").to_owned();
        loop {
            let next: Value = call(&app, Method::GET, &format!("/api/admin/users?email=pager-&limit=2&cursor={cursor}"), &admin.access, None).await.json().await.expect("json");
            seen += next["users"].as_array().expect("users").len();
            match next["next_cursor"].as_str() {
                Some(c) => cursor = c.to_owned(),
                None => break,
            }
        }
        assert_eq!(seen, 5);
        // LIKE wildcards are matched literally.
        let none: Value = call(&app, Method::GET, "/api/admin/users?email=%25", &admin.access, None).await.json().await.expect("json");
        assert_eq!(none["users"], json!([]));
    }

    async fn creating_changing_and_deleting_users() {
        let app = TestApp::spawn().await;
        let admin = app.admin().await;
        let created = call(&app, Method::POST, "/api/admin/users", &admin.access, Some(json!({"email": "Staff@Example.com", "name": "Staff", "roles": ["user", "editor"], "password": PASSWORD}))).await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let staff: Value = created.json().await.expect("json");
        assert_eq!(staff["email"], "staff@example.com");
        assert_eq!(staff["roles"], json!(["user", "editor"]));
        let id = staff["id"].as_str().expect("id").to_owned();
        assert_error(call(&app, Method::POST, "/api/admin/users", &admin.access, Some(json!({"email": "staff@example.com", "name": "Again", "password": PASSWORD}))).await, StatusCode::CONFLICT, "user_exists").await;
        assert_error(call(&app, Method::POST, "/api/admin/users", &admin.access, Some(json!({"email": "x@example.com", "name": "X", "roles": ["Bad Role"]}))).await, StatusCode::BAD_REQUEST, "invalid_request").await;

        // A role change revokes the access tokens, not the session.
        let tokens = app.session_of("staff@example.com").await;
        let changed = call(&app, Method::PATCH, &format!("/api/admin/users/{id}"), &admin.access, Some(json!({"roles": ["user"]}))).await;
        assert_eq!(changed.status(), StatusCode::OK);
        assert_error(app.get("/api/profile", Some(&tokens.access)).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
        let refreshed: Value = app.refresh(&tokens.refresh).await.json().await.expect("json");
        let next = Tokens::of(&refreshed);
        assert_eq!(next.claims()["roles"], json!(["user"]));
        assert_eq!(app.get("/api/profile", Some(&next.access)).await.status(), StatusCode::OK);

        // Disabling revokes everything.
        let disabled: Value = call(&app, Method::PATCH, &format!("/api/admin/users/{id}"), &admin.access, Some(json!({"disabled": true}))).await.json().await.expect("json");
        assert_eq!(disabled["disabled"], true);
        assert_error(app.get("/api/profile", Some(&next.access)).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
        assert_error(app.refresh(&next.refresh).await, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
        assert_error(app.login("staff@example.com", PASSWORD).await, StatusCode::FORBIDDEN, "forbidden").await;
        call(&app, Method::PATCH, &format!("/api/admin/users/{id}"), &admin.access, Some(json!({"disabled": false}))).await;
        let again = app.session_of("staff@example.com").await;

        // Deleting: its tokens stop at once.
        assert_eq!(call(&app, Method::DELETE, &format!("/api/admin/users/{id}"), &admin.access, None).await.status(), StatusCode::NO_CONTENT);
        assert_error(app.get("/api/profile", Some(&again.access)).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
        for path in [format!("/api/admin/users/{id}"), "/api/admin/users/not-a-uuid".into(), format!("/api/admin/users/{}", uuid::Uuid::new_v4())] {
            assert_error(call(&app, Method::PATCH, &path, &admin.access, Some(json!({"disabled": true}))).await, StatusCode::NOT_FOUND, "not_found").await;
        }
    }

    async fn the_last_admin_is_protected() {
        let app = TestApp::spawn().await;
        let admin = app.admin().await;
        let me: Value = app.get("/api/auth/me", Some(&admin.access)).await.json().await.expect("json");
        let id = me["id"].as_str().expect("id");
        for body in [json!({"roles": ["user"]}), json!({"disabled": true})] {
            assert_error(call(&app, Method::PATCH, &format!("/api/admin/users/{id}"), &admin.access, Some(body)).await, StatusCode::CONFLICT, "conflict").await;
        }
        assert_error(call(&app, Method::DELETE, &format!("/api/admin/users/{id}"), &admin.access, None).await, StatusCode::CONFLICT, "conflict").await;
    }

    async fn unlocking_sessions_and_reset_mails() {
        let app = TestApp::spawn_with(&[("LOCKOUT_THRESHOLD", "2")]).await;
        let admin = app.admin().await;
        let (email, body) = app.new_user().await;
        let id = body["user"]["id"].as_str().expect("id").to_owned();
        for _ in 0..2 {
            app.login(&email, "wrong password").await;
        }
        let listed: Value = call(&app, Method::GET, &format!("/api/admin/users?email={email}"), &admin.access, None).await.json().await.expect("json");
        assert_eq!(listed["users"][0]["locked"], true);
        let unlocked: Value = call(&app, Method::PATCH, &format!("/api/admin/users/{id}"), &admin.access, Some(json!({"locked": false}))).await.json().await.expect("json");
        assert_eq!(unlocked["locked"], false);
        let tokens = app.session_of(&email).await;
        let sessions: Vec<Value> = call(&app, Method::GET, &format!("/api/admin/users/{id}/sessions"), &admin.access, None).await.json().await.expect("json");
        assert_eq!(sessions.len(), 2);
        let sid = tokens.claims()["sid"].as_str().expect("sid").to_owned();
        assert_eq!(call(&app, Method::DELETE, &format!("/api/admin/users/{id}/sessions/{sid}"), &admin.access, None).await.status(), StatusCode::NO_CONTENT);
        assert_error(app.get("/api/profile", Some(&tokens.access)).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
        assert_error(call(&app, Method::DELETE, &format!("/api/admin/users/{id}/sessions/{sid}"), &admin.access, None).await, StatusCode::NOT_FOUND, "not_found").await;
        assert_eq!(call(&app, Method::POST, &format!("/api/admin/users/{id}/password-reset"), &admin.access, None).await.status(), StatusCode::ACCEPTED);
        crate::mail::link_token(&app, &email, "reset", 1).await;
    }

    async fn rotating_and_revoking_keys() {
        let app = TestApp::spawn().await;
        let admin = app.admin().await;
        let keys: Value = call(&app, Method::GET, "/api/admin/keys", &admin.access, None).await.json().await.expect("json");
        assert_eq!(keys.as_array().expect("keys").len(), 1);
        assert_eq!(keys[0]["state"], "current");
        let old_kid = keys[0]["kid"].as_str().expect("kid").to_owned();
        let rotated: Value = call(&app, Method::POST, "/api/admin/keys/rotate?now=true", &admin.access, None).await.json().await.expect("json");
        let new_kid = rotated["kid"].as_str().expect("kid").to_owned();
        // The new key signs at once; the old one still verifies.
        let fresh = app.session_of("root@example.com").await;
        assert_eq!(crate::helpers::kid_of(&fresh.access), new_kid);
        assert_eq!(app.get("/api/profile", Some(&admin.access)).await.status(), StatusCode::OK);
        // Revoking the old key kills its tokens at once and tells the feed.
        assert_eq!(call(&app, Method::POST, &format!("/api/admin/keys/{old_kid}/revoke"), &fresh.access, None).await.status(), StatusCode::NO_CONTENT);
        assert_error(app.get("/api/profile", Some(&admin.access)).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
        let jwks: Value = app.get("/.well-known/jwks.json", None).await.json().await.expect("json");
        assert!(!jwks.to_string().contains(&old_kid));
        crate::helpers::eventually(std::time::Duration::from_secs(3), || async {
            let feed: Value = app.get("/.well-known/revocations", None).await.json().await.expect("json");
            feed["revoked"].as_array().is_some_and(|r| r.iter().any(|e| e["kid"] == old_kid.as_str()))
        })
        .await;
        assert_error(call(&app, Method::POST, "/api/admin/keys/unknown/revoke", &fresh.access, None).await, StatusCode::NOT_FOUND, "not_found").await;
    }

    async fn the_audit_trail_records_security_events_without_secrets() {
        let app = TestApp::spawn().await;
        let admin = app.admin().await;
        let (email, body) = app.new_user().await;
        let id = body["user"]["id"].as_str().expect("id").to_owned();
        app.login(&email, "a-wrong-secret-password").await;
        let tokens = app.session_of(&email).await;
        app.post_auth("/api/auth/logout", &tokens.access).await;
        call(&app, Method::PATCH, &format!("/api/admin/users/{id}"), &admin.access, Some(json!({"roles": ["user", "editor"]}))).await;
        let wanted = ["login_failed", "login", "logout", "roles_changed"];
        crate::helpers::eventually(std::time::Duration::from_secs(5), || async {
            let page: Value = call(&app, Method::GET, &format!("/api/admin/audit?user={id}"), &admin.access, None).await.json().await.expect("json");
            let kinds: Vec<String> = page["events"].as_array().map(|e| e.iter().filter_map(|x| x["type"].as_str().map(str::to_owned)).collect()).unwrap_or_default();
            let all = wanted.iter().all(|w| kinds.iter().any(|k| k == w));
            if !all {
                eprintln!("audit so far: {kinds:?}");
            }
            all
        })
        .await;
        let page: Value = call(&app, Method::GET, &format!("/api/admin/audit?user={id}"), &admin.access, None).await.json().await.expect("json");
        let text = page.to_string();
        for secret in ["a-wrong-secret-password", PASSWORD, tokens.access.as_str(), tokens.refresh.as_str()] {
            assert!(!text.contains(secret), "a secret in the audit trail");
        }
        let login = page["events"].as_array().expect("events").iter().find(|e| e["type"] == "login").expect("login event").clone();
        assert_eq!(login["ip"], "127.0.0.1");
        assert!(login["at"].is_string());
        // Filters and paging.
        let failed: Value = call(&app, Method::GET, "/api/admin/audit?type=login_failed", &admin.access, None).await.json().await.expect("json");
        assert!(failed["events"].as_array().expect("events").iter().all(|e| e["type"] == "login_failed"));
        let first: Value = call(&app, Method::GET, &format!("/api/admin/audit?user={id}&limit=1"), &admin.access, None).await.json().await.expect("json");
        let cursor = first["next_cursor"].as_str().expect("cursor").to_owned();
        let second: Value = call(&app, Method::GET, &format!("/api/admin/audit?user={id}&limit=1&cursor={cursor}"), &admin.access, None).await.json().await.expect("json");
        assert!(second["events"][0]["id"].as_i64() < first["events"][0]["id"].as_i64());
        let future: Value = call(&app, Method::GET, "/api/admin/audit?since=2999-01-01T00:00:00Z", &admin.access, None).await.json().await.expect("json");
        assert_eq!(future["events"], json!([]));
        assert_error(call(&app, Method::GET, "/api/admin/audit?since=yesterday", &admin.access, None).await, StatusCode::BAD_REQUEST, "invalid_request").await;
    }

    // Stored in the rotation's own transaction: there as soon as the
    // refresh answers, once per rotation; a reused token is an event of
    // its own.
    async fn each_rotation_is_one_refresh_event_in_the_audit_trail() {
        let app = TestApp::spawn().await;
        let admin = app.admin().await;
        let (_, body) = app.new_user().await;
        let id = body["user"]["id"].as_str().expect("id").to_owned();
        let first = Tokens::of(&body["tokens"]);
        let session = first.claims()["sid"].as_str().expect("sid").to_owned();
        let mut current = first.refresh.clone();
        for _ in 0..3 {
            let response = app.refresh(&current).await;
            assert_eq!(response.status(), StatusCode::OK);
            current = Tokens::of(&response.json::<Value>().await.expect("json")).refresh;
        }
        assert_eq!(app.refresh(&first.refresh).await.status(), StatusCode::UNAUTHORIZED, "reuse, not grace: its successor is spent");
        let page: Value = call(&app, Method::GET, &format!("/api/admin/audit?user={id}&type=refresh"), &admin.access, None).await.json().await.expect("json");
        let events = page["events"].as_array().expect("events");
        assert_eq!(events.len(), 3, "{page}");
        for event in events {
            assert_eq!(event["session_id"], session.as_str());
            assert_eq!(event["detail"], json!({}));
            assert!(event["at"].is_string());
        }
        crate::helpers::eventually(std::time::Duration::from_secs(5), || async {
            let page: Value = call(&app, Method::GET, &format!("/api/admin/audit?user={id}&type=refresh_token_reused"), &admin.access, None).await.json().await.expect("json");
            page["events"].as_array().is_some_and(|events| events.len() == 1)
        })
        .await;
    }

    async fn old_audit_events_are_pruned() {
        let app = TestApp::spawn_with(&[("AUDIT_RETENTION", "1s"), ("RETENTION_INTERVAL", "1s")]).await;
        let admin = app.admin().await;
        app.login("nobody@example.com", "whatever pw").await;
        crate::helpers::eventually(std::time::Duration::from_secs(5), || async {
            app.scalar::<i64>("SELECT COUNT(*) FROM audit_events WHERE type = 'login_failed'").await > 0
        })
        .await;
        crate::helpers::eventually(std::time::Duration::from_secs(10), || async {
            app.scalar::<i64>("SELECT COUNT(*) FROM audit_events WHERE type = 'login_failed'").await == 0
        })
        .await;
        let _ = admin;
    }

    async fn hs256_has_no_keys_to_rotate() {
        let app = TestApp::spawn_hs256().await;
        let admin = app.admin().await;
        assert_error(call(&app, Method::POST, "/api/admin/keys/rotate", &admin.access, None).await, StatusCode::CONFLICT, "conflict").await;
        assert_error(call(&app, Method::GET, "/api/admin/keys", &admin.access, None).await, StatusCode::CONFLICT, "conflict").await;
        // A token minted with the leaked secret for a non-admin gets no admin rights.
        let (_, body) = app.new_user().await;
        let user = Tokens::of(&body["tokens"]);
        let mut claims = user.claims();
        claims["roles"] = json!(["user", "admin"]);
        let forged = crate::helpers::mint_hs256(&claims);
        assert_error(call(&app, Method::GET, "/api/admin/users", &forged, None).await, StatusCode::FORBIDDEN, "forbidden").await;
    }
}
