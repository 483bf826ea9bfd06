//! Settings from the environment (API.md, Process interface) → a validated
//! [`Config`]. A bad or weak setting stops the process at start with a
//! message naming the variable, rather than surfacing later as odd behaviour.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use portcullis_token::Algorithm;
use secrecy::{ExposeSecret, SecretBox, SecretString};

/// A setting that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

fn bad(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

/// How access tokens are signed.
#[derive(Debug)]
pub enum SigningConfig {
    /// Asymmetric keys generated and kept (encrypted) in the database.
    Stored(Algorithm),
    /// HS256 under `JWT_SECRET`, never stored; `previous` still verifies.
    Secret {
        current: SecretBox<Vec<u8>>,
        previous: Option<SecretBox<Vec<u8>>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    Open,
    Closed,
    Invite,
}

#[derive(Debug)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug)]
pub struct Config {
    pub bind: IpAddr,
    pub port: u16,
    pub data_dir: PathBuf,
    /// Revocation broadcast between instances.
    pub redis_url: Option<SecretString>,
    /// Prefix of every Redis key and channel, so deployments (or tests) can
    /// share one Redis.
    pub redis_prefix: String,
    /// `postgres://…`; `None` selects the embedded SQLite database.
    pub database_url: Option<SecretString>,
    pub database_max_connections: u32,
    pub public_url: String,
    pub issuer: String,
    pub audience: String,
    pub signing: SigningConfig,
    /// Base64 of 32 bytes; `None` means "use or create `$DATA_DIR/master.key`".
    pub master_key: Option<SecretString>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub refresh_grace: Duration,
    /// `KEY_ROTATION_INTERVAL`: rotate the signing key this often (off when
    /// `None`).
    pub key_rotation_interval: Option<Duration>,
    pub session_max_lifetime: Duration,
    pub session_idle_timeout: Duration,
    pub request_timeout: Duration,
    pub hash_queue_limit: usize,
    pub limits: crate::auth::LimitSettings,
    pub mail_limits: crate::auth::MailLimits,
    /// `SMTP_URL`; `None` writes mail to `$DATA_DIR/outbox`.
    pub smtp_url: Option<SecretString>,
    pub mail_from: String,
    pub mail_templates_dir: Option<PathBuf>,
    pub require_email_verification: bool,
    /// `false` drops `Secure` from cookies, for plain-HTTP development only.
    pub cookie_secure: bool,
    /// Exact origins (`scheme://host[:port]`) that get CORS answers with
    /// credentials.
    pub cors_allowed_origins: Vec<String>,
    pub trusted_proxies: Vec<crate::net::Cidr>,
    /// How often ended sessions and expired revocations are deleted.
    pub retention_interval: Duration,
    /// Audit events older than this are deleted.
    pub audit_retention: Duration,
    /// Bearer token required on the revocations feed, when set.
    pub revocations_token: Option<SecretString>,
    pub registration: Registration,
    pub registration_domains: Vec<String>,
    pub tls: Option<TlsConfig>,
    pub log_format: LogFormat,
    /// `METRICS_TOKEN`: `/metrics` requires it as a bearer token.
    pub metrics_token: Option<SecretString>,
}

/// Reads variables through `lookup`, so tests need not touch the process
/// environment.
#[allow(missing_debug_implementations)]
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// A set, non-empty value.
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.is_empty())
    }

    /// A secret from `NAME`, or from the file named by `NAME_FILE` (one
    /// trailing newline stripped, as editors add one).
    fn secret(
        &self,
        name: &'static str,
        file_var: &'static str,
    ) -> Result<Option<String>, ConfigError> {
        match (self.get(name), self.get(file_var)) {
            (Some(_), Some(_)) => Err(bad(
                name,
                format!("set either {name} or {file_var}, not both"),
            )),
            (Some(v), None) => Ok(Some(v)),
            (None, Some(path)) => {
                let mut text = std::fs::read_to_string(&path)
                    .map_err(|e| bad(file_var, format!("cannot read {path}: {e}")))?;
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                Ok(Some(text))
            }
            (None, None) => Ok(None),
        }
    }

    fn duration(&self, name: &'static str, default: &str) -> Result<Duration, ConfigError> {
        let text = self.get(name).unwrap_or_else(|| default.to_owned());
        let parsed = match text.parse::<u64>() {
            Ok(seconds) => Duration::from_secs(seconds),
            Err(_) => humantime::parse_duration(&text).map_err(|e| {
                bad(
                    name,
                    format!("{text:?} is not a duration like 15m or 900 ({e})"),
                )
            })?,
        };
        if parsed.is_zero() {
            return Err(bad(name, "must be greater than zero"));
        }
        Ok(parsed)
    }

    fn parse<T: std::str::FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|e| bad(name, format!("{text:?} is not valid: {e}"))),
        }
    }

    fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(other) => Err(bad(name, format!("{other:?} is not true or false"))),
        }
    }
}

impl Config {
    /// The configuration of this process, from its environment.
    pub fn from_process_env() -> Result<Self, ConfigError> {
        Self::from_env(&Env(|name: &str| std::env::var(name).ok()))
    }

    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let port = env.parse("PORT", 8080u16)?;
        let public_url = match env.get("PUBLIC_URL") {
            None => format!("http://localhost:{port}"),
            Some(url) => validate_public_url(&url)?,
        };
        let database_url = env.secret("DATABASE_URL", "DATABASE_URL_FILE")?;
        let is_postgres =
            |url: &str| url.starts_with("postgres://") || url.starts_with("postgresql://");
        if database_url.as_deref().is_some_and(|url| !is_postgres(url)) {
            return Err(bad(
                "DATABASE_URL",
                "must be a postgres:// URL; unset it to use the embedded SQLite database in DATA_DIR",
            ));
        }
        let tls = match (env.get("TLS_CERT"), env.get("TLS_KEY")) {
            (Some(cert), Some(key)) => Some(TlsConfig {
                cert: cert.into(),
                key: key.into(),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(bad("TLS_KEY", "TLS_CERT is set, so TLS_KEY must be too"));
            }
            (None, Some(_)) => {
                return Err(bad("TLS_CERT", "TLS_KEY is set, so TLS_CERT must be too"));
            }
        };
        let config = Self {
            bind: env.parse("BIND", IpAddr::from([0, 0, 0, 0]))?,
            port,
            data_dir: env
                .get("DATA_DIR")
                .unwrap_or_else(|| "./data".into())
                .into(),
            database_url: database_url.map(SecretString::from),
            redis_url: env
                .secret("REDIS_URL", "REDIS_URL_FILE")?
                .map(SecretString::from),
            redis_prefix: env
                .get("REDIS_KEY_PREFIX")
                .unwrap_or_else(|| "portcullis:".into()),
            database_max_connections: env.parse("DATABASE_MAX_CONNECTIONS", 10u32)?,
            public_url,
            issuer: env.get("JWT_ISSUER").unwrap_or_else(|| "portcullis".into()),
            audience: env
                .get("JWT_AUDIENCE")
                .unwrap_or_else(|| "portcullis".into()),
            signing: signing(env)?,
            master_key: master_key(env)?,
            access_ttl: env.duration("JWT_EXPIRATION", "15m")?,
            refresh_ttl: env.duration("REFRESH_TOKEN_EXPIRATION", "168h")?,
            refresh_grace: env.duration("REFRESH_GRACE", "10s")?,
            key_rotation_interval: match env.get("KEY_ROTATION_INTERVAL") {
                None => None,
                Some(_) => Some(env.duration("KEY_ROTATION_INTERVAL", "30d")?),
            },
            session_max_lifetime: env.duration("SESSION_MAX_LIFETIME", "30d")?,
            session_idle_timeout: env.duration("SESSION_IDLE_TIMEOUT", "168h")?,
            request_timeout: env.duration("REQUEST_TIMEOUT", "10s")?,
            hash_queue_limit: env.parse("HASH_QUEUE_LIMIT", 64usize)?,
            limits: crate::auth::LimitSettings {
                login_per_address: env.parse("LOGIN_RATE_PER_ADDRESS", rate(30, 60))?,
                lockout_threshold: env.parse("LOCKOUT_THRESHOLD", 5u32)?,
                lockout_duration: env.duration("LOCKOUT_DURATION", "15m")?,
                account_failures: env.parse("ACCOUNT_FAILURE_LIMIT", rate(50, 3600))?,
                signup_per_address: env.parse("SIGNUP_RATE_PER_ADDRESS", rate(10, 3600))?,
            },
            mail_limits: crate::auth::MailLimits {
                per_recipient: env.parse("MAIL_RATE_PER_RECIPIENT", rate(3, 3600))?,
                global: env.parse("MAIL_RATE_GLOBAL", rate(1000, 3600))?,
            },
            smtp_url: env
                .secret("SMTP_URL", "SMTP_URL_FILE")?
                .map(SecretString::from),
            mail_from: env
                .get("MAIL_FROM")
                .unwrap_or_else(|| "Portcullis <noreply@localhost>".into()),
            mail_templates_dir: env.get("MAIL_TEMPLATES_DIR").map(PathBuf::from),
            require_email_verification: env.flag("REQUIRE_EMAIL_VERIFICATION", false)?,
            cookie_secure: env.flag("COOKIE_SECURE", true)?,
            cors_allowed_origins: match env.get("CORS_ALLOWED_ORIGINS") {
                None => Vec::new(),
                Some(list) => list
                    .split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(|o| validate_origin(o).map_err(|e| bad("CORS_ALLOWED_ORIGINS", e)))
                    .collect::<Result<_, _>>()?,
            },
            trusted_proxies: match env.get("TRUSTED_PROXIES") {
                None => Vec::new(),
                Some(list) => list
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(str::parse)
                    .collect::<Result<_, String>>()
                    .map_err(|e| bad("TRUSTED_PROXIES", e))?,
            },
            retention_interval: env.duration("RETENTION_INTERVAL", "10m")?,
            audit_retention: env.duration("AUDIT_RETENTION", "90d")?,
            revocations_token: env
                .secret("REVOCATIONS_TOKEN", "REVOCATIONS_TOKEN_FILE")?
                .map(SecretString::from),
            registration: match env.get("REGISTRATION").as_deref() {
                None | Some("open") => Registration::Open,
                Some("closed") => Registration::Closed,
                Some("invite") => Registration::Invite,
                Some(other) => {
                    return Err(bad(
                        "REGISTRATION",
                        format!("{other:?} is not open, closed or invite"),
                    ));
                }
            },
            registration_domains: env
                .get("REGISTRATION_DOMAINS")
                .map(|v| {
                    v.split(',')
                        .map(|d| d.trim().trim_start_matches('@').to_lowercase())
                        .filter(|d| !d.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            tls,
            log_format: match env.get("LOG_FORMAT").as_deref() {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(bad("LOG_FORMAT", format!("{other:?} is not text or json")));
                }
            },
            metrics_token: env
                .secret("METRICS_TOKEN", "METRICS_TOKEN_FILE")?
                .map(SecretString::from),
        };
        if config.access_ttl > config.refresh_ttl {
            return Err(bad(
                "JWT_EXPIRATION",
                "must not be longer than REFRESH_TOKEN_EXPIRATION",
            ));
        }
        Ok(config)
    }
}

fn rate(count: u32, seconds: u64) -> crate::auth::limits::Rate {
    crate::auth::limits::Rate {
        count,
        period: Duration::from_secs(seconds),
    }
}

/// An exact origin: scheme and host (and port), no path.
fn validate_origin(origin: &str) -> Result<String, String> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| format!("{origin:?} must start with http:// or https://"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '*']) {
        return Err(format!(
            "{origin:?} is not an exact origin like https://app.example.com"
        ));
    }
    Ok(origin.to_owned())
}

/// The origin (`scheme://host[:port]`) of a URL.
pub fn origin_of(url: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    match url[scheme_end..].find('/') {
        Some(i) => url[..scheme_end + i].to_owned(),
        None => url.to_owned(),
    }
}

fn validate_public_url(url: &str) -> Result<String, ConfigError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            bad(
                "PUBLIC_URL",
                format!("{url:?} must start with http:// or https://"),
            )
        })?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || rest.contains(['?', '#', ' ']) {
        return Err(bad(
            "PUBLIC_URL",
            format!("{url:?} is not an absolute URL without query or fragment"),
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn signing<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<SigningConfig, ConfigError> {
    let secret = match env.secret("JWT_SECRET", "JWT_SECRET_FILE")? {
        Some(s) => Some(s),
        None => env.secret("JWT_SECRET_KEY", "JWT_SECRET_KEY_FILE")?,
    };
    let algorithm = env.get("JWT_ALGORITHM");
    match (secret, algorithm) {
        (Some(secret), algorithm) => {
            if let Some(alg) = algorithm.filter(|a| a != "HS256") {
                return Err(bad(
                    "JWT_SECRET",
                    format!(
                        "is set, which selects HS256, but JWT_ALGORITHM is {alg}; unset one of them"
                    ),
                ));
            }
            let current = check_secret("JWT_SECRET", secret)?;
            let previous = env
                .secret("JWT_SECRET_PREVIOUS", "JWT_SECRET_PREVIOUS_FILE")?
                .map(|p| check_secret("JWT_SECRET_PREVIOUS", p))
                .transpose()?;
            Ok(SigningConfig::Secret { current, previous })
        }
        (None, Some(alg)) => match alg.parse::<Algorithm>() {
            Ok(Algorithm::HS256) => Err(bad(
                "JWT_ALGORITHM",
                "HS256 needs JWT_SECRET (at least 32 bytes)",
            )),
            Ok(alg) => Ok(SigningConfig::Stored(alg)),
            Err(e) => Err(bad("JWT_ALGORITHM", e.to_string())),
        },
        (None, None) => Ok(SigningConfig::Stored(Algorithm::EdDSA)),
    }
}

fn check_secret(variable: &'static str, secret: String) -> Result<SecretBox<Vec<u8>>, ConfigError> {
    let bytes = secret.into_bytes();
    if bytes.len() < 32 {
        return Err(bad(
            variable,
            format!("must be at least 32 bytes, got {}", bytes.len()),
        ));
    }
    Ok(SecretBox::new(Box::new(bytes)))
}

fn master_key<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Option<SecretString>, ConfigError> {
    let Some(text) = env.secret("PORTCULLIS_MASTER_KEY", "PORTCULLIS_MASTER_KEY_FILE")? else {
        return Ok(None);
    };
    let secret = SecretString::from(text);
    crate::auth::secrets::MasterKey::from_base64(secret.expose_secret())
        .map_err(|e| bad("PORTCULLIS_MASTER_KEY", e.to_string()))?;
    Ok(Some(secret))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_env(&Env(move |name: &str| map.get(name).cloned()))
    }

    fn refused(vars: &[(&str, &str)]) -> &'static str {
        match config(vars) {
            Err(e) => e.variable,
            Ok(_) => panic!("{vars:?} was accepted"),
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = config(&[]).expect("empty environment is valid");
        assert_eq!(c.port, 8080);
        assert_eq!(c.public_url, "http://localhost:8080");
        assert_eq!(c.issuer, "portcullis");
        assert_eq!(c.access_ttl, Duration::from_secs(900));
        assert_eq!(c.refresh_ttl, Duration::from_secs(168 * 3600));
        assert!(matches!(c.signing, SigningConfig::Stored(Algorithm::EdDSA)));
        assert_eq!(c.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn bad_settings_name_their_variable() {
        assert_eq!(refused(&[("JWT_SECRET", "short")]), "JWT_SECRET");
        assert_eq!(refused(&[("JWT_SECRET_KEY", "short")]), "JWT_SECRET");
        assert_eq!(
            refused(&[("JWT_SECRET", &"x".repeat(32)), ("JWT_ALGORITHM", "EdDSA")]),
            "JWT_SECRET"
        );
        assert_eq!(refused(&[("JWT_ALGORITHM", "HS256")]), "JWT_ALGORITHM");
        assert_eq!(refused(&[("JWT_ALGORITHM", "none")]), "JWT_ALGORITHM");
        assert_eq!(refused(&[("JWT_EXPIRATION", "fifteen")]), "JWT_EXPIRATION");
        assert_eq!(refused(&[("JWT_EXPIRATION", "0")]), "JWT_EXPIRATION");
        assert_eq!(refused(&[("PORT", "99999")]), "PORT");
        assert_eq!(refused(&[("BIND", "localhost:1")]), "BIND");
        assert_eq!(refused(&[("PUBLIC_URL", "example.com")]), "PUBLIC_URL");
        assert_eq!(
            refused(&[("PORTCULLIS_MASTER_KEY", "c2hvcnQ=")]),
            "PORTCULLIS_MASTER_KEY"
        );
        assert_eq!(refused(&[("TLS_CERT", "/tmp/c.pem")]), "TLS_KEY");
        assert_eq!(refused(&[("LOG_FORMAT", "xml")]), "LOG_FORMAT");
        assert_eq!(
            refused(&[("LOGIN_RATE_PER_ADDRESS", "30")]),
            "LOGIN_RATE_PER_ADDRESS"
        );
        assert_eq!(
            refused(&[("ACCOUNT_FAILURE_LIMIT", "50/d")]),
            "ACCOUNT_FAILURE_LIMIT"
        );
        assert_eq!(
            refused(&[("LOCKOUT_THRESHOLD", "five")]),
            "LOCKOUT_THRESHOLD"
        );
        assert_eq!(
            refused(&[("TRUSTED_PROXIES", "10.0.0.0/8, nonsense")]),
            "TRUSTED_PROXIES"
        );
        assert_eq!(refused(&[("REGISTRATION", "maybe")]), "REGISTRATION");
        assert_eq!(refused(&[("COOKIE_SECURE", "perhaps")]), "COOKIE_SECURE");
        assert_eq!(refused(&[("DATABASE_URL", "mysql://x")]), "DATABASE_URL");
        assert!(config(&[("DATABASE_URL", "postgres://u@h/db")]).is_ok());
        assert_eq!(
            refused(&[
                ("JWT_SECRET", &"x".repeat(32)),
                ("JWT_SECRET_PREVIOUS", "short")
            ]),
            "JWT_SECRET_PREVIOUS"
        );
    }

    #[test]
    fn secrets_and_durations() {
        let c =
            config(&[("JWT_SECRET", &"s".repeat(32)), ("JWT_EXPIRATION", "90")]).expect("valid");
        assert!(matches!(c.signing, SigningConfig::Secret { .. }));
        assert_eq!(c.access_ttl, Duration::from_secs(90));
        let dir = std::env::temp_dir().join(format!("portcullis-secret-{}", std::process::id()));
        std::fs::write(&dir, format!("{}\n", "f".repeat(32))).expect("write");
        let c = config(&[("JWT_SECRET_FILE", dir.to_str().expect("utf-8"))]).expect("valid");
        match c.signing {
            SigningConfig::Secret { current, .. } => assert_eq!(current.expose_secret().len(), 32),
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_file(dir);
    }
}
