//! The Portcullis auth server. `main.rs` is a thin shell over [`cli::run`].
//!
//! Layers, top to bottom: `http` (axum) → `auth` (the domain, no HTTP types)
//! → `store` (persistence) and `portcullis-token` (JOSE).

pub mod app;
pub mod audit;
pub mod auth;
pub mod bus;
pub mod cli;
pub mod config;
pub mod http;
pub mod import;
pub mod mail;
pub mod metrics;
pub mod net;
pub mod store;
pub mod telemetry;
