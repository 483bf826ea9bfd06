use thiserror::Error;

/// What a call can end in.
#[derive(Debug, Error)]
pub enum Error {
    /// The server answered with its `{error, code}` body.
    #[error("{status} {code}: {message}")]
    Api {
        status: u16,
        /// The stable code to branch on, e.g. `invalid_credentials`,
        /// `token_expired`, `refresh_token_reused`.
        code: String,
        message: String,
    },
    /// The request never got an answer (connection, timeout, TLS).
    #[error("request failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// An answer that is not what the contract says.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// The base URL cannot be used.
    #[error("invalid base URL: {0}")]
    BaseUrl(String),
}

impl Error {
    /// The server's error code, if the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}
