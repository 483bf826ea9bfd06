//! `GET /account`: the account page (static HTML, CSS and a little
//! JavaScript, built into the binary; no build step), with a strict CSP.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const HTML: &str = include_str!("account/index.html");
const JS: &str = include_str!("account/account.js");
const CSS: &str = include_str!("account/account.css");

/// Only this origin's own files; no inline script or style, no framing, no
/// form posts elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[utoipa::path(get, path = "/account", tag = "browser",
    responses((status = 200, description = "The account page: sign up and in, sessions, password, mail links (`#reset=`, `#verify=`, `#email=`)", content_type = "text/html", body = String)))]
pub async fn page() -> Response {
    asset("text/html; charset=utf-8", HTML)
}

#[utoipa::path(get, path = "/account/account.js", tag = "browser",
    responses((status = 200, description = "The account page's script", content_type = "text/javascript", body = String)))]
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

#[utoipa::path(get, path = "/account/account.css", tag = "browser",
    responses((status = 200, description = "The account page's style sheet", content_type = "text/css", body = String)))]
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", CSS)
}
