//! The Portcullis auth server. `main.rs` is a thin shell over [`cli::run`].
//!
//! Quick start: `cargo run --release --bin portcullis` serves on port 8080
//! with an embedded SQLite database in `./data`; every setting is an
//! environment variable (API.md's table); `portcullis user create --email …
//! --password … --role admin` makes the first administrator. The HTTP
//! contract is served at `/openapi.json` (Swagger UI at `/docs`).
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
pub mod math;
pub mod memory;
pub mod metrics;
pub mod net;
pub mod store;
pub mod telemetry;
