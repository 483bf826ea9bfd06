//! One typed call per endpoint. Calls that act for a user take its access
//! token; [`crate::Authenticated`] supplies a fresh one.

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::Error;
use crate::types::{
    Jwks, Message, OpenIdConfiguration, Profile, Session, SessionInfo, TokenPair, User,
};

/// A Portcullis server at a base URL.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client with its own connection pool and a 30-second timeout.
    pub fn new(base_url: &str) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Self::with_http(base_url, http)
    }

    /// A client on an existing `reqwest::Client` (its TLS, proxy and pool).
    pub fn with_http(base_url: &str, http: reqwest::Client) -> Result<Self, Error> {
        let base = base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::BaseUrl(format!(
                "{base_url:?} is not an http(s) URL"
            )));
        }
        Ok(Self {
            http,
            base: base.to_owned(),
        })
    }

    /// The underlying `reqwest::Client`.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `base` + `path` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub async fn register(
        &self,
        email: &str,
        password: &str,
        name: &str,
    ) -> Result<Session, Error> {
        let body = json!({"email": email, "password": password, "name": name});
        let request = self.request(Method::POST, "/api/auth/register").json(&body);
        decode(request.send().await?).await
    }

    /// Opens a session; `device_name` shows in the session list.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        device_name: Option<&str>,
    ) -> Result<Session, Error> {
        let body = json!({"email": email, "password": password, "device_name": device_name});
        let request = self.request(Method::POST, "/api/auth/login").json(&body);
        decode(request.send().await?).await
    }

    /// Spends `refresh_token` for the next pair. Keep the returned refresh
    /// token: the one passed in is now spent.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, Error> {
        let body = json!({"refresh_token": refresh_token});
        let request = self.request(Method::POST, "/api/auth/refresh").json(&body);
        decode(request.send().await?).await
    }

    /// Ends the session of `refresh_token` (idempotent).
    pub async fn logout(&self, refresh_token: &str) -> Result<(), Error> {
        let body = json!({"refresh_token": refresh_token});
        let request = self.request(Method::POST, "/api/auth/logout").json(&body);
        empty(request.send().await?).await
    }

    pub async fn forgot_password(&self, email: &str) -> Result<(), Error> {
        self.post_empty("/api/auth/password/forgot", json!({"email": email}))
            .await
    }

    pub async fn reset_password(&self, token: &str, new_password: &str) -> Result<(), Error> {
        let body = json!({"token": token, "new_password": new_password});
        self.post_empty("/api/auth/password/reset", body).await
    }

    pub async fn verify_email(&self, token: &str) -> Result<(), Error> {
        self.post_empty("/api/auth/email/verify", json!({"token": token}))
            .await
    }

    pub async fn resend_verification(&self, email: &str) -> Result<(), Error> {
        self.post_empty("/api/auth/email/resend", json!({"email": email}))
            .await
    }

    pub async fn confirm_email(&self, token: &str) -> Result<(), Error> {
        self.post_empty("/api/auth/email/confirm", json!({"token": token}))
            .await
    }

    pub async fn jwks(&self) -> Result<Jwks, Error> {
        let request = self.request(Method::GET, "/.well-known/jwks.json");
        decode(request.send().await?).await
    }

    pub async fn openid_configuration(&self) -> Result<OpenIdConfiguration, Error> {
        let request = self.request(Method::GET, "/.well-known/openid-configuration");
        decode(request.send().await?).await
    }

    pub async fn me(&self, access_token: &str) -> Result<User, Error> {
        self.get_as(access_token, "/api/auth/me").await
    }

    pub async fn profile(&self, access_token: &str) -> Result<Profile, Error> {
        self.get_as(access_token, "/api/profile").await
    }

    pub async fn data(&self, access_token: &str) -> Result<Message, Error> {
        self.get_as(access_token, "/api/data").await
    }

    pub async fn sessions(&self, access_token: &str) -> Result<Vec<SessionInfo>, Error> {
        self.get_as(access_token, "/api/auth/sessions").await
    }

    pub async fn delete_session(&self, access_token: &str, id: &str) -> Result<(), Error> {
        let request = self
            .request(Method::DELETE, &format!("/api/auth/sessions/{id}"))
            .bearer_auth(access_token);
        empty(request.send().await?).await
    }

    /// Ends every session of the user, this one included.
    pub async fn logout_all(&self, access_token: &str) -> Result<(), Error> {
        let request = self
            .request(Method::POST, "/api/auth/logout-all")
            .bearer_auth(access_token);
        empty(request.send().await?).await
    }

    /// Changes the password; every other session ends.
    pub async fn change_password(
        &self,
        access_token: &str,
        current_password: &str,
        new_password: &str,
    ) -> Result<(), Error> {
        let body = json!({"current_password": current_password, "new_password": new_password});
        let request = self
            .request(Method::POST, "/api/auth/password")
            .bearer_auth(access_token)
            .json(&body);
        empty(request.send().await?).await
    }

    /// Asks for a change of address, confirmed by a link to the new one.
    pub async fn change_email(
        &self,
        access_token: &str,
        new_email: &str,
        password: &str,
    ) -> Result<(), Error> {
        let body = json!({"new_email": new_email, "password": password});
        let request = self
            .request(Method::POST, "/api/auth/email")
            .bearer_auth(access_token)
            .json(&body);
        empty(request.send().await?).await
    }

    /// Deletes the account; its sessions and tokens end at once.
    pub async fn delete_account(&self, access_token: &str, password: &str) -> Result<(), Error> {
        let request = self
            .request(Method::DELETE, "/api/auth/me")
            .bearer_auth(access_token)
            .json(&json!({"password": password}));
        empty(request.send().await?).await
    }

    async fn get_as<T: DeserializeOwned>(
        &self,
        access_token: &str,
        path: &str,
    ) -> Result<T, Error> {
        let request = self.request(Method::GET, path).bearer_auth(access_token);
        decode(request.send().await?).await
    }

    async fn post_empty(&self, path: &str, body: Value) -> Result<(), Error> {
        empty(self.request(Method::POST, path).json(&body).send().await?).await
    }
}

/// A 2xx body as `T`, or the server's error.
pub(crate) async fn decode<T: DeserializeOwned>(response: Response) -> Result<T, Error> {
    let response = check(response).await?;
    let bytes = response.bytes().await?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Unexpected(e.to_string()))
}

async fn empty(response: Response) -> Result<(), Error> {
    check(response).await.map(drop)
}

/// The response if it is a success, else its `{error, code}` as an error.
pub(crate) async fn check(response: Response) -> Result<Response, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    Err(api_error(
        status,
        &response.bytes().await.unwrap_or_default(),
    ))
}

pub(crate) fn api_error(status: StatusCode, body: &[u8]) -> Error {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |key: &str| parsed[key].as_str().unwrap_or_default().to_owned();
    Error::Api {
        status: status.as_u16(),
        code: text("code"),
        message: text("error"),
    }
}
