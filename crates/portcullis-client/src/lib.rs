//! A client for a [Portcullis](https://example.invalid/portcullis) auth
//! server.
//!
//! [`Client`] has a typed call for every public and user endpoint.
//! [`Authenticated`] holds a signed-in session: it attaches the access
//! token to requests, refreshes it shortly before it expires, and shares one
//! refresh among all concurrent callers — a refresh token is good once, so
//! two callers refreshing at the same time would otherwise race each other
//! into the server's reuse detection. A `401 token_expired` (a clock ahead
//! of the client's) triggers one refresh and one retry. A hook sees every
//! rotated refresh token, to persist it.
//!
//! ```no_run
//! # async fn run() -> Result<(), portcullis_client::Error> {
//! use portcullis_client::{Authenticated, Client};
//!
//! let client = Client::new("https://auth.example.com")?;
//! let session = client.login("ada@example.com", "correct horse battery staple", Some("laptop")).await?;
//! let authed = Authenticated::new(client, session.tokens)
//!     .on_refresh_token(|token| {
//!         // store `token` where the next start finds it
//!         let _ = token;
//!     });
//! let profile = authed.client().profile(&authed.access_token().await?).await?;
//! let response = authed.get("/api/data").await?; // any route, token attached
//! # let _ = (profile, response);
//! # Ok(()) }
//! ```

mod authenticated;
mod client;
mod error;
mod types;

pub use authenticated::Authenticated;
pub use client::Client;
pub use error::Error;
pub use types::{
    Jwk, Jwks, Message, OpenIdConfiguration, Profile, Session, SessionInfo, TokenPair, User,
};
