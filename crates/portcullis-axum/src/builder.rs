//! Configuring a [`Verifier`].

use std::time::Duration;

use portcullis_token::{KeyRing, Validator};

use crate::verifier::{Sources, Verifier};

/// What went wrong while setting a verifier up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("no keys: call discover, jwks_url or static_keys")]
    NoKeys,
    #[error("discovery at {url} failed: {reason}")]
    Discovery { url: String, reason: String },
}

/// Where the verifier gets its keys and revocations, and what it expects
/// of tokens.
#[derive(Debug, Default)]
pub struct VerifierBuilder {
    issuer: Option<String>,
    audience: Option<String>,
    sources: Option<Sources>,
    revocations: Option<Option<String>>,
    revocations_token: Option<String>,
    max_staleness: Option<Duration>,
    http: Option<reqwest::Client>,
}

impl VerifierBuilder {
    /// The Portcullis server's base URL, e.g. `https://auth.example.com`:
    /// the issuer and JWKS location come from its discovery document, the
    /// revocations from `/.well-known/revocations` beside it.
    pub async fn discover(mut self, base_url: &str) -> Result<Self, SetupError> {
        let base = base_url.trim_end_matches('/');
        let url = format!("{base}/.well-known/openid-configuration");
        let failed = |reason: String| SetupError::Discovery {
            url: url.clone(),
            reason,
        };
        let http = self.http();
        let document: serde_json::Value = http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| failed(e.to_string()))?
            .json()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let issuer = document["issuer"]
            .as_str()
            .ok_or_else(|| failed("no issuer".into()))?;
        self.issuer.get_or_insert_with(|| issuer.to_owned());
        // Fetched from where this service reaches the server: the document's
        // own URLs name the server's public address, which a service inside
        // the same network may not reach.
        self.sources = Some(Sources {
            jwks_url: Some(format!("{base}/.well-known/jwks.json")),
            static_keys: None,
            revocations_url: None,
            revocations_token: None,
            max_staleness: Duration::ZERO,
        });
        self.revocations
            .get_or_insert(Some(format!("{base}/.well-known/revocations")));
        Ok(self)
    }

    /// Keys from this JWKS URL, cached as its `Cache-Control` says and
    /// refetched (single-flight, at most once a second) on an unknown `kid`.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.sources = Some(Sources {
            jwks_url: Some(url.into()),
            static_keys: None,
            revocations_url: None,
            revocations_token: None,
            max_staleness: Duration::ZERO,
        });
        self
    }

    /// Fixed keys (e.g. an HS256 secret shared with the server, or public
    /// keys shipped with the service).
    pub fn static_keys(mut self, ring: KeyRing) -> Self {
        self.sources = Some(Sources {
            jwks_url: None,
            static_keys: Some(ring),
            revocations_url: None,
            revocations_token: None,
            max_staleness: Duration::ZERO,
        });
        self
    }

    /// The `iss` tokens must carry (default `portcullis`, or the discovered
    /// issuer).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The `aud` tokens must carry (default `portcullis`).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Follow this revocations feed (set by [`Self::discover`]); `None`
    /// turns it off: logouts then only end tokens at their expiry.
    pub fn revocations_url(mut self, url: Option<String>) -> Self {
        self.revocations = Some(url);
        self
    }

    /// The server's `REVOCATIONS_TOKEN`, when it requires one.
    pub fn revocations_token(mut self, token: impl Into<String>) -> Self {
        self.revocations_token = Some(token.into());
        self
    }

    /// How long the feed may go unanswered before every request is refused
    /// (`503`, failing closed); default 60 s.
    pub fn max_staleness(mut self, staleness: Duration) -> Self {
        self.max_staleness = Some(staleness);
        self
    }

    /// The HTTP client for the JWKS and the feed (its TLS settings, proxy).
    /// By default one is built; it uses the process's rustls crypto
    /// provider when the host program installed one, else aws-lc-rs.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    fn http(&self) -> reqwest::Client {
        self.http.clone().unwrap_or_default()
    }

    /// Starts the background tasks (on the current tokio runtime) and
    /// returns at once; requests are answered `503` until the keys and the
    /// first revocation snapshot are in.
    pub fn start(self) -> Result<Verifier, SetupError> {
        let http = self.http();
        let mut sources = self.sources.ok_or(SetupError::NoKeys)?;
        sources.revocations_url = self.revocations.flatten();
        sources.revocations_token = self.revocations_token;
        sources.max_staleness = self.max_staleness.unwrap_or(Duration::from_secs(60));
        let validator = Validator::new(
            self.issuer.unwrap_or_else(|| "portcullis".into()),
            self.audience.unwrap_or_else(|| "portcullis".into()),
        );
        Ok(Verifier::start(validator, http, sources))
    }
}

impl Verifier {
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }
}
