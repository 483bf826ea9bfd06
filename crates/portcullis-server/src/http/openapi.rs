//! The OpenAPI 3.1 document. Every route is registered through
//! `utoipa-axum`'s `routes!`, so a route cannot exist without its operation;
//! each handler's `#[utoipa::path]` names its own bodies and the errors
//! particular to it. The errors every operation of a kind can answer (a
//! body's 413/415, an authenticated route's 401, the 503 any request can
//! meet) are added here, once, from what each operation declares.

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::{Modify, ToSchema};

/// The document's frame; the operations come from the routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Portcullis",
        description = "JWT authentication: register, login, short-lived signed access tokens, \
            rotating refresh tokens with reuse detection, per-device sessions, revocation that \
            reaches every verifier (JWKS + revocations feed), roles, key rotation, rate limits, \
            password reset, HttpOnly-cookie mode and forward auth for gateways. \
            Every error is `{error, code}`; unknown request members are ignored.",
    ),
    components(schemas(ErrorBody, ErrorCode)),
    modifiers(&Contract),
    tags(
        (name = "auth", description = "Sign up, sign in, refresh, sign out"),
        (name = "account", description = "The signed-in user's own account"),
        (name = "sessions", description = "The signed-in user's devices"),
        (name = "mail", description = "Flows that go through a mailed link"),
        (name = "classic", description = "The Go/Gin tutorial's protected routes"),
        (name = "verification", description = "For services and gateways that verify tokens"),
        (name = "admin", description = "Administrators, checked against the database on every request"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
        (name = "browser", description = "The account page"),
    )
)]
pub struct ApiDoc;

/// `/openapi.json`, rendered on its first request. The same code always
/// produces the same document, so it is rendered once per process.
static DOCUMENT: OnceLock<Bytes> = OnceLock::new();

/// Completes the document the routes produce (the Swagger UI page, the
/// errors every operation can answer) as JSON.
fn render(mut openapi: OpenApi) -> Bytes {
    openapi.paths.paths.insert(
        "/docs".to_owned(),
        PathItem::new(
            HttpMethod::Get,
            OperationBuilder::new()
                .tag("operations")
                .summary(Some(
                    "An interactive page for this document (Swagger UI, served from the binary)",
                ))
                .response(
                    "200",
                    ResponseBuilder::new()
                        .description("The page")
                        .content("text/html", ContentBuilder::new().build())
                        .build(),
                )
                .build(),
        ),
    );
    add_common_errors(&mut openapi);
    openapi
        .to_pretty_json()
        .map(Bytes::from)
        .unwrap_or_default()
}

#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object)))]
pub async fn document() -> Response {
    let document = DOCUMENT.get_or_init(|| render(super::api_document()));
    let mut response = document.clone().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Swagger UI at `/docs`, from the files `utoipa-swagger-ui` vendors (no
/// download at build time, no CDN at run time).
pub fn docs<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    let router: axum::Router<S> = utoipa_swagger_ui::SwaggerUi::new("/docs")
        .config(utoipa_swagger_ui::Config::from("/openapi.json"))
        .into();
    router.layer(axum::middleware::map_response(
        |mut response: Response| async {
            response.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DOCS_CSP),
            );
            response
        },
    ))
}

/// Swagger UI's own files only; it sets inline styles, and shows data: icons.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Every error: a human-readable message and a stable code to branch on.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// For people; wording may change.
    pub error: String,
    #[schema(value_type = ErrorCode)]
    pub code: &'static str,
}

/// The stable error codes of the contract. `ApiError` carries them as
/// strings; this list is what the document promises, and the contract test
/// checks every error answer against it.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ErrorCode {
    InvalidRequest,
    WeakPassword,
    InvalidLink,
    InvalidCredentials,
    MissingToken,
    InvalidToken,
    TokenExpired,
    TokenRevoked,
    InvalidRefreshToken,
    RefreshTokenReused,
    Forbidden,
    EmailNotVerified,
    CsrfFailed,
    NotFound,
    MethodNotAllowed,
    Conflict,
    UserExists,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    Unavailable,
}

/// Security schemes, and the document's description.
#[derive(Debug)]
pub struct Contract;

pub const BEARER: &str = "bearer";
pub const COOKIE: &str = "cookie";

impl Modify for Contract {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from login, register or refresh."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "access_token",
                "Cookie mode: the HttpOnly access-token cookie; state-changing requests \
                 also need X-CSRF-Token equal to the csrf_token cookie.",
            ))),
        );
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// Adds the errors an operation answers because of what it is: a JSON body
/// (400, 413, 415), credentials (401), and any request (503: overload,
/// a database outage, the request deadline).
pub fn add_common_errors(openapi: &mut OpenApi) {
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
        ];
        for operation in operations.into_iter().flatten() {
            add_to(operation);
        }
    }
}

fn add_to(operation: &mut Operation) {
    let mut add = |status: &str, description: &str| {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(description).into());
    };
    add(
        "503",
        "unavailable: overloaded, the database is unreachable, or the request took too long; see Retry-After",
    );
    let has_body = operation.request_body.is_some();
    if has_body {
        add(
            "400",
            "invalid_request: the body is not valid JSON or breaks a rule",
        );
        add("413", "payload_too_large: bodies are at most 64 KiB");
        add(
            "415",
            "unsupported_media_type: bodies must be application/json",
        );
    }
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    if secured {
        add(
            "401",
            "missing_token, invalid_token, token_expired or token_revoked (with WWW-Authenticate)",
        );
    }
}
