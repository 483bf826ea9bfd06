//! Verify [Portcullis](https://example.invalid/portcullis) access tokens in
//! an axum service, honouring logouts.
//!
//! A [`Verifier`] keeps the server's public keys (from its JWKS, cached per
//! `Cache-Control`, refetched on an unknown `kid`, the last good set kept
//! while the server is unreachable) and follows its revocations feed, so a
//! logout is refused within about a second — the thing hand-written JWT
//! middleware gets wrong. Tokens verified once are cached until they
//! expire; revocation is checked on every request. Until the keys and the
//! first revocation snapshot are in, and whenever the feed has been silent
//! longer than `max_staleness`, requests get `503 unavailable`: it fails
//! closed. Errors have the server's `{error, code}` shape with
//! `WWW-Authenticate`.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use portcullis_axum::{AuthLayer, Claims, RequireRole, Verifier};
//!
//! portcullis_axum::role!(Admin = "admin");
//!
//! async fn me(claims: Claims) -> String {
//!     format!("hello {}", claims.email)
//! }
//!
//! async fn admin_only(_: RequireRole<Admin>) -> &'static str {
//!     "hello admin"
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::builder().discover("http://auth.internal:8080").await?.start()?;
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .route("/admin", get(admin_only))
//!     .layer(AuthLayer::new(verifier));
//! # let _ = app; Ok(()) }
//! ```

mod builder;
mod error;
mod extract;
mod layer;
mod revocations;
mod verifier;

pub use builder::{SetupError, VerifierBuilder};
pub use error::Rejection;
pub use extract::{Claims, RequireRole, Role};
pub use layer::{AuthLayer, AuthService};
pub use verifier::Verifier;
