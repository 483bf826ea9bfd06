//! The account page in a real headless Chromium, driven over WebDriver
//! (chromedriver) with plain HTTP requests. Screenshots go to the test
//! target directory.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp};
use crate::mail::link_token;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: Client,
    profile: std::path::PathBuf,
}

impl Browser {
    async fn start() -> Option<Self> {
        let (chromium, driver) = ("/usr/bin/chromium", "/usr/bin/chromedriver");
        if !std::path::Path::new(chromium).exists() || !std::path::Path::new(driver).exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "chromium and chromium-driver are required in CI"
            );
            eprintln!(
                "skipping the browser test: Debian's chromium and chromium-driver are not installed"
            );
            return None;
        }
        let port = free_port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile =
            std::env::temp_dir().join(format!("portcullis-chromium-{}", uuid::Uuid::new_v4()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--disable-component-update", "--no-first-run",
                         "--disable-sync", "--disable-quic", "--window-size=1000,1300",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("json");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        Some(Self {
            driver,
            base,
            session,
            http,
            profile,
        })
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("json")
    }

    async fn open(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn find(&self, css: &str) -> Option<String> {
        let found = self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found["value"][ELEMENT].as_str().map(str::to_owned)
    }

    /// Waits for `css` to be displayed and returns it.
    async fn visible(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(id) = self.find(css).await {
                let shown = self
                    .command(
                        reqwest::Method::GET,
                        &format!("/element/{id}/displayed"),
                        None,
                    )
                    .await;
                if shown["value"] == true {
                    return id;
                }
            }
            assert!(Instant::now() < deadline, "{css} never became visible");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn text(&self, css: &str) -> String {
        let id = self.visible(css).await;
        let text = self
            .command(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await;
        text["value"].as_str().unwrap_or_default().to_owned()
    }

    async fn wait_text(&self, css: &str, wanted: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = self.text(css).await;
            if text.contains(wanted) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{css} says {text:?}, never {wanted:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.visible(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let id = self.visible(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn count(&self, css: &str) -> usize {
        let found = self
            .command(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found["value"].as_array().map_or(0, Vec::len)
    }

    async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let shot = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["value"].as_str().expect("png"))
            .expect("base64");
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium outlives its driver: end every process of this profile.
        let _ = Command::new("pkill").arg("-f").arg(&self.profile).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

#[tokio::test]
async fn the_account_page_works_in_a_real_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let port = free_port().to_string();
    let public = format!("http://127.0.0.1:{port}");
    // Sign-up, notices and the reset link all go to one inbox.
    let app = TestApp::spawn_with(&[
        ("PORT", &port),
        ("PUBLIC_URL", &public),
        ("COOKIE_SECURE", "false"),
        ("MAIL_RATE_PER_RECIPIENT", "100/h"),
    ])
    .await;
    let page = format!("{public}/account");

    // Sign up.
    browser.open(&page).await;
    browser.visible("#signed-out").await;
    browser.type_into("#register-name", "Ada Lovelace").await;
    browser
        .type_into("#register-email", "ada@example.com")
        .await;
    browser.type_into("#register-password", PASSWORD).await;
    browser.click("#register-form button").await;
    browser.wait_text("#me-email", "ada@example.com").await;
    browser.wait_text("#sessions", "(this device)").await;
    browser.screenshot("account-signed-in").await;

    // Another device signs in; end its session from the page.
    let other = app.session_of("ada@example.com").await;
    browser.open(&page).await;
    browser.visible("#signed-in").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while browser.count("#sessions tr").await != 2 {
        assert!(Instant::now() < deadline, "two sessions never listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser
        .click("#sessions tr:not(.current) .end-session")
        .await;
    browser.wait_text("#message", "Session ended").await;
    assert_eq!(
        app.get("/api/profile", Some(&other.access)).await.status(),
        reqwest::StatusCode::UNAUTHORIZED
    );

    // Change the password, sign out, sign in with the new one.
    browser.type_into("#current-password", PASSWORD).await;
    browser
        .type_into("#new-password", "a different passphrase")
        .await;
    browser.click("#password-form button").await;
    browser.wait_text("#message", "Password changed").await;
    browser.click("#sign-out").await;
    browser.visible("#signed-out").await;
    browser.type_into("#login-email", "ada@example.com").await;
    browser
        .type_into("#login-password", "a different passphrase")
        .await;
    browser.click("#login-form button").await;
    browser.wait_text("#me-email", "ada@example.com").await;

    // The verification link from the sign-up mail.
    let verify = link_token(&app, "ada@example.com", "verify", 1).await;
    browser.open(&format!("{page}#verify={verify}")).await;
    browser.click("#confirm-link").await;
    browser.wait_text("#message", "Address confirmed").await;

    // Forgot password → the link → a new password.
    browser.click("#sign-out").await;
    browser.visible("#signed-out").await;
    browser.type_into("#forgot-email", "ada@example.com").await;
    browser.click("#forgot-form button").await;
    browser.wait_text("#message", "reset link").await;
    let reset = link_token(&app, "ada@example.com", "reset", 1).await;
    browser.open(&format!("{page}#reset={reset}")).await;
    browser
        .type_into("#reset-password", "the reset passphrase")
        .await;
    browser.screenshot("account-reset").await;
    browser.click("#reset-form button").await;
    browser.wait_text("#message", "Password set").await;
    assert_eq!(
        app.login("ada@example.com", "the reset passphrase")
            .await
            .status(),
        reqwest::StatusCode::OK
    );
    browser.screenshot("account-after-reset").await;
    browser.command(reqwest::Method::DELETE, "", None).await;
}
