//! Black-box tests: each boots the real `portcullis` binary on a random
//! loopback port with a fresh data directory and talks HTTP to it.

mod admin;
mod browser;
mod client;
mod cluster;
mod cookies;
mod edge;
mod example;
mod faults;
mod gateway;
mod helpers;
mod interop;
mod lifecycle;
mod limits;
mod login;
mod mail;
mod middleware;
mod migration;
mod nginx;
mod observability;
mod protected;
mod refresh;
mod register;
mod revocation;
mod sessions;
mod wellknown;
