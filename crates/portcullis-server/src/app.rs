//! Wiring: from a [`Config`] to a running server.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use secrecy::ExposeSecret;
use time::OffsetDateTime;

use crate::auth::csrf::CsrfKey;
use crate::auth::keys::{KEY_SEALING_LABEL, Keys};
use crate::auth::limits::Limiter;
use crate::auth::password::Passwords;
use crate::auth::revocation::Revocations;
use crate::auth::secrets::MasterKey;
use crate::auth::{Auth, Parts, REFRESH_LOOKUP_LABEL};
use crate::bus::RedisBus;
use crate::mail::Mailer;

/// Label of the CSRF token key.
const CSRF_LABEL: &[u8] = b"csrf";

/// Label of the mail-token lookup hash key.
const MAIL_TOKEN_LABEL: &[u8] = b"mail-token-lookup";
use crate::config::{Config, SigningConfig};
use crate::http::{self, AppInner, AppState};
use crate::store::{AnyStore, PgStore, SqliteStore, Store};

/// Opens the database (running migrations): PostgreSQL when `DATABASE_URL`
/// is set, else SQLite in `DATA_DIR`.
pub async fn open_store(config: &Config) -> anyhow::Result<AnyStore> {
    if let Some(url) = &config.database_url {
        let store = PgStore::connect(
            url.expose_secret(),
            config.database_max_connections,
            // Requests give up at REQUEST_TIMEOUT anyway; connecting at start
            // deserves a little more patience.
            config
                .request_timeout
                .max(std::time::Duration::from_secs(5)),
        )
        .await
        .context("DATABASE_URL: cannot connect to PostgreSQL or migrate it")?;
        return Ok(AnyStore::Postgres(store));
    }
    create_private_dir(&config.data_dir)?;
    let path = config.data_dir.join("portcullis.db");
    let store = SqliteStore::open(&path)
        .await
        .with_context(|| format!("DATA_DIR: cannot open the database at {}", path.display()))?;
    Ok(AnyStore::Sqlite(store))
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("DATA_DIR: cannot create {}", dir.display()))
}

pub fn master_key(config: &Config) -> anyhow::Result<MasterKey> {
    match &config.master_key {
        Some(text) => {
            MasterKey::from_base64(text.expose_secret()).context("PORTCULLIS_MASTER_KEY: invalid")
        }
        None => {
            if config.database_url.is_some() {
                tracing::warn!(
                    "PORTCULLIS_MASTER_KEY is not set: using $DATA_DIR/master.key; every instance sharing this database needs the same key"
                );
            }
            create_private_dir(&config.data_dir)?;
            MasterKey::load_or_create(&config.data_dir.join("master.key"))
                .context("PORTCULLIS_MASTER_KEY: cannot read or create $DATA_DIR/master.key")
        }
    }
}

/// Everything a request needs, built once at start.
pub async fn build_auth(
    config: &Config,
    limiter: crate::auth::limits::Limiter,
) -> anyhow::Result<Auth<AnyStore>> {
    // The password probes (one argon2id and one bcrypt run, ~0.1 s) run on
    // a thread of their own while the database is opened and every live
    // revocation is loaded (enforced from the first request on).
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let hash_queue_limit = config.hash_queue_limit;
    let passwords = tokio::task::spawn_blocking(move || Passwords::new(workers, hash_queue_limit));
    let store = open_store(config).await?;
    let master = master_key(config)?;
    let sealer = master.sealer(KEY_SEALING_LABEL)?;
    let keys = Keys::load(&store, &config.signing, sealer, OffsetDateTime::now_utc())
        .await
        .context("signing keys")?;
    let revocations = Revocations::new(store.feed_epoch().await?);
    crate::auth::sessions::poll_revocations(&store, &revocations, &keys)
        .await
        .map_err(|e| anyhow::anyhow!("loading revocations: {e}"))?;
    let passwords = passwords.await.context("password probes")??;
    let mailer = Mailer::start(
        config.smtp_url.as_ref().map(|u| u.expose_secret()),
        &config.mail_from,
        &config.data_dir,
    )?;
    Ok(Auth::new(
        config,
        Parts {
            store,
            keys,
            passwords,
            refresh_hasher: master.token_hasher(REFRESH_LOOKUP_LABEL),
            mail_hasher: master.token_hasher(MAIL_TOKEN_LABEL),
            revocations,
            limiter,
            mailer,
            csrf: CsrfKey::new(master.derive(CSRF_LABEL).as_ref()),
        },
    ))
}

/// Confirms revocations from the database: at once after this instance
/// wrote one (then rings the other instances through Redis), at once when
/// Redis rings, and every second regardless.
async fn follow_revocations(state: AppState, heard: Arc<tokio::sync::Notify>) {
    loop {
        let wrote_here = tokio::select! {
            () = state.auth.revocation_written.notified() => true,
            () = heard.notified() => false,
            () = tokio::time::sleep(Duration::from_secs(1)) => false,
        };
        if let Err(e) = state.auth.poll_revocations().await {
            tracing::warn!(error = %e, "reading revocations failed; retrying");
        }
        if let Some(bus) = state.bus.as_ref().filter(|_| wrote_here) {
            bus.ring().await;
        }
    }
}

/// Picks up keys other instances created, so a rotation reaches every
/// instance within seconds.
async fn reload_keys(state: AppState) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        if let Err(e) = state
            .auth
            .keys
            .reload(&state.auth.store, OffsetDateTime::now_utc())
            .await
        {
            tracing::warn!(error = %e, "reloading keys failed");
        }
    }
}

/// `KEY_ROTATION_INTERVAL`: when no key was created within the interval,
/// rotate (publish now, sign after the JWKS cache lifetime). The check reads
/// the database, so instances sharing it rotate once between them (barring a
/// race within the same minute, which only publishes one more key).
async fn rotate_keys(state: AppState, every: Duration) {
    loop {
        let at = OffsetDateTime::now_utc();
        match state.auth.store.signing_keys().await {
            Ok(keys) => {
                let newest = keys.iter().map(|k| k.created_at).max();
                if newest.is_none_or(|t| at - t >= every) {
                    match state.auth.admin_rotate_key(false).await {
                        Ok(record) => tracing::info!(kid = %record.kid, "scheduled key rotation"),
                        Err(e) => tracing::warn!(error = %e, "scheduled key rotation failed"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading keys for rotation failed"),
        }
        tokio::time::sleep(Duration::from_secs(60).min(every)).await;
    }
}

/// Stores audit events as they come, whatever has queued up since the last
/// write in one statement (a database outage loses none that fit the queue:
/// each batch is retried once, then left in the log stream only).
async fn write_audit(
    state: AppState,
    mut events: tokio::sync::mpsc::Receiver<crate::audit::AuditEvent>,
) {
    const MAX_BATCH: usize = 256;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while events.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if state.auth.store.insert_audit_events(&batch).await.is_err() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if let Err(e) = state.auth.store.insert_audit_events(&batch).await {
                tracing::warn!(error = %e, events = batch.len(), "audit events could not be stored");
            }
        }
        batch.clear();
    }
}

/// Deletes ended sessions, spent token hashes, expired revocations and old
/// audit events.
async fn retention(state: AppState, every: Duration, audit_retention: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = state
            .auth
            .store
            .prune_audit(OffsetDateTime::now_utc() - audit_retention)
            .await
        {
            tracing::warn!(error = %e, "pruning audit events failed");
        }
        state.auth.limiter.shrink();
        match state.auth.prune().await {
            Ok(pruned) => tracing::info!(
                sessions = pruned.sessions,
                refresh_tokens = pruned.refresh_tokens,
                revocations = pruned.revocations,
                "retention"
            ),
            Err(e) => tracing::warn!(error = %e, "retention failed; retrying later"),
        }
        crate::memory::release_free_pages();
    }
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    if matches!(config.signing, SigningConfig::Secret { .. }) {
        tracing::warn!(
            "JWT_SECRET selects HS256: every service holding the secret can mint tokens"
        );
    }
    let heard = Arc::new(tokio::sync::Notify::new());
    let bus = match &config.redis_url {
        Some(url) => Some(
            RedisBus::start(url.expose_secret(), &config.redis_prefix, heard.clone())
                .context("REDIS_URL: not a valid Redis URL")?,
        ),
        None => None,
    };
    let limiter = Limiter::new(
        bus.as_ref()
            .map(|bus| (bus.connection(), config.redis_prefix.clone())),
    );
    let auth = build_auth(&config, limiter).await?;
    let state: AppState = Arc::new(AppInner {
        auth,
        issuer: config.issuer.clone(),
        public_url: config.public_url.clone(),
        request_timeout: config.request_timeout,
        hsts: config.tls.is_some(),
        revocations_token: config.revocations_token.clone(),
        metrics_token: config.metrics_token.clone(),
        metrics: crate::metrics::install(),
        long_polls: Default::default(),
        bus,
        trusted_proxies: config.trusted_proxies.clone(),
        cookie_secure: config.cookie_secure,
        cookie_lifetime: config.refresh_ttl,
        allowed_origins: std::iter::once(crate::config::origin_of(&config.public_url))
            .chain(config.cors_allowed_origins.iter().cloned())
            .collect(),
    });
    tokio::spawn(follow_revocations(state.clone(), heard));
    tokio::spawn(retention(
        state.clone(),
        config.retention_interval,
        config.audit_retention,
    ));
    if let Some(events) = crate::audit::sink() {
        tokio::spawn(write_audit(state.clone(), events));
    }
    tokio::spawn(reload_keys(state.clone()));
    if let Some(metrics) = state.metrics.clone() {
        tokio::spawn(async move {
            // Histograms keep samples until upkeep folds them in.
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                metrics.run_upkeep();
            }
        });
    }
    if let Some(every) = config.key_rotation_interval {
        tokio::spawn(rotate_keys(state.clone(), every));
    }
    let service = http::router(state.clone(), &config.cors_allowed_origins);
    crate::memory::release_free_pages();
    let app = axum::ServiceExt::into_make_service_with_connect_info::<SocketAddr>(service);
    let listener = std::net::TcpListener::bind((config.bind, config.port))
        .with_context(|| format!("PORT: cannot listen on {}:{}", config.bind, config.port))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    tokio::spawn(shutdown_on_signal(handle.clone()));
    match &config.tls {
        None => {
            tracing::info!(%addr, "listening on http://{addr}");
            axum_server::from_tcp(listener)?
                .handle(handle)
                .serve(app)
                .await?;
        }
        Some(tls) => {
            let rustls = RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .context("TLS_CERT/TLS_KEY: cannot load the certificate or key")?;
            tokio::spawn(reload_certificates(
                rustls.clone(),
                tls.cert.clone(),
                tls.key.clone(),
            ));
            tracing::info!(%addr, "listening on https://{addr}");
            axum_server::from_tcp_rustls(listener, rustls)?
                .handle(handle)
                .serve(app)
                .await?;
        }
    }
    state.auth.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM or Ctrl-C: stop accepting, let requests in flight finish.
async fn shutdown_on_signal(handle: axum_server::Handle<SocketAddr>) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
    handle.graceful_shutdown(Some(Duration::from_secs(10)));
}

/// Picks up renewed certificate files without a restart.
async fn reload_certificates(
    config: RustlsConfig,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
) {
    let stamp = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen = (stamp(&cert), stamp(&key));
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = (stamp(&cert), stamp(&key));
        if now != seen {
            match config.reload_from_pem_file(&cert, &key).await {
                Ok(()) => {
                    tracing::info!("TLS certificate reloaded");
                    seen = now;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "TLS certificate reload failed; keeping the old one")
                }
            }
        }
    }
}
