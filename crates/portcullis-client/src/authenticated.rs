//! A signed-in session that keeps its access token fresh.
//!
//! A refresh token is good once, so refreshes must never run side by side:
//! the second would present a spent token and, past the server's grace
//! window, end the session as stolen. Every refresh here goes through one
//! async lock, and a caller that waited for it first looks whether the
//! token it wanted replaced was replaced meanwhile.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;

use crate::client::{Client, api_error};
use crate::error::Error;
use crate::types::TokenPair;

/// Refresh this long before expiry, or a fifth of a short lifetime.
const MARGIN: Duration = Duration::from_secs(30);

type RefreshHook = Box<dyn Fn(&str) + Send + Sync>;

struct Current {
    pair: TokenPair,
    refresh_at: Instant,
}

impl Current {
    fn new(pair: TokenPair) -> Self {
        let lifetime = Duration::from_secs(pair.expires_in);
        let refresh_at = Instant::now() + lifetime - MARGIN.min(lifetime / 5);
        Self { pair, refresh_at }
    }
}

pub struct Authenticated {
    client: Client,
    current: Mutex<Current>,
    refreshing: tokio::sync::Mutex<()>,
    on_refresh: Option<RefreshHook>,
}

impl std::fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticated")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl Authenticated {
    /// A session from the pair login, register or a stored refresh gave.
    pub fn new(client: Client, tokens: TokenPair) -> Self {
        Self {
            client,
            current: Mutex::new(Current::new(tokens)),
            refreshing: tokio::sync::Mutex::new(()),
            on_refresh: None,
        }
    }

    /// Called with each new refresh token, before it is used: persist it,
    /// or the next start has only a spent one.
    pub fn on_refresh_token(mut self, hook: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_refresh = Some(Box::new(hook));
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The refresh token in force (for logout, or to store).
    pub fn refresh_token(&self) -> String {
        self.lock().pair.refresh_token.clone()
    }

    /// A valid access token, refreshed first when it is about to expire.
    pub async fn access_token(&self) -> Result<String, Error> {
        let (token, due) = {
            let current = self.lock();
            (
                current.pair.access_token.clone(),
                Instant::now() >= current.refresh_at,
            )
        };
        if due {
            self.replace(&token).await
        } else {
            Ok(token)
        }
    }

    /// Sends a request built by `build` with the access token attached;
    /// a `401 token_expired` refreshes once and sends it once more. Any
    /// other non-2xx answer is the server's error.
    pub async fn execute(
        &self,
        build: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Response, Error> {
        let token = self.access_token().await?;
        let response = build(&self.client).bearer_auth(&token).send().await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let error = api_error(status, &response.bytes().await.unwrap_or_default());
        if status != StatusCode::UNAUTHORIZED || error.code() != Some("token_expired") {
            return Err(error);
        }
        let token = self.replace(&token).await?;
        let response = build(&self.client).bearer_auth(&token).send().await?;
        crate::client::check(response).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Response, Error> {
        self.execute(|client| client.request(Method::GET, path))
            .await
    }

    /// `method path` with a JSON body.
    pub async fn send_json<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<Response, Error> {
        self.execute(|client| client.request(method.clone(), path).json(body))
            .await
    }

    /// Ends this session on the server.
    pub async fn logout(&self) -> Result<(), Error> {
        self.client.logout(&self.refresh_token()).await
    }

    /// Refreshes unless `stale` was replaced meanwhile; the access token in
    /// force afterwards.
    async fn replace(&self, stale: &str) -> Result<String, Error> {
        let _only_one = self.refreshing.lock().await;
        let refresh_token = {
            let current = self.lock();
            if current.pair.access_token != stale {
                return Ok(current.pair.access_token.clone());
            }
            current.pair.refresh_token.clone()
        };
        let pair = self.client.refresh(&refresh_token).await?;
        if let Some(hook) = &self.on_refresh {
            hook(&pair.refresh_token);
        }
        let access = pair.access_token.clone();
        *self.lock() = Current::new(pair);
        Ok(access)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}
