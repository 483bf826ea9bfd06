//! Redis as a doorbell for revocations: the database stays the truth.
//!
//! After an instance writes a revocation it publishes a ring on one channel;
//! every instance that hears it reads the database from its cursor at once.
//! On every (re)connect an instance reads the database again, so nothing
//! revoked while it was cut off is missed; and the one-second database poll
//! runs whether or not Redis answers, which bounds the delay while it is
//! down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, PushKind};
use tokio::sync::Notify;

const TIMEOUT: Duration = Duration::from_secs(2);

pub struct RedisBus {
    manager: ConnectionManager,
    channel: String,
    connected: Arc<AtomicBool>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("connected", &self.connected.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Pub/sub over one multiplexed connection needs RESP3.
fn resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

impl RedisBus {
    /// Sets up the connection; a Redis that is down now is retried in the
    /// background, so the server starts (and serves) without it.
    /// `ring` is notified on every message and every reconnect.
    pub fn start(url: &str, prefix: &str, ring: Arc<Notify>) -> redis::RedisResult<Arc<Self>> {
        let client = redis::Client::open(resp3(url))?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let config = ConnectionManagerConfig::new()
            .set_push_sender(tx)
            .set_automatic_resubscription()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let manager = ConnectionManager::new_lazy_with_config(client, config)?;
        let bus = Arc::new(Self {
            manager,
            channel: format!("{prefix}revocations"),
            connected: Arc::new(AtomicBool::new(false)),
        });
        let heard = ring.clone();
        let connected = bus.connected.clone();
        tokio::spawn(async move {
            while let Some(push) = rx.recv().await {
                match push.kind {
                    PushKind::Message => heard.notify_one(),
                    PushKind::Disconnection => {
                        connected.store(false, Ordering::Relaxed);
                        tracing::warn!(
                            "Redis connection lost; polling the database until it is back"
                        );
                    }
                    // (Re)subscribed: read everything missed while away.
                    PushKind::Subscribe => heard.notify_one(),
                    _ => {}
                }
            }
        });
        tokio::spawn(bus.clone().keep_subscribed(ring));
        Ok(bus)
    }

    /// Subscribes, and after a disconnection keeps trying until Redis is back
    /// (a lazy connection only reconnects when used).
    async fn keep_subscribed(self: Arc<Self>, ring: Arc<Notify>) {
        loop {
            if !self.connected.load(Ordering::Relaxed) {
                let mut manager = self.manager.clone();
                match manager.subscribe(&self.channel).await {
                    Ok(()) => {
                        self.connected.store(true, Ordering::Relaxed);
                        tracing::info!("subscribed to Redis revocations");
                        ring.notify_one();
                    }
                    Err(e) => tracing::debug!(error = %e, "Redis not reachable yet"),
                }
            } else if !self.ping().await {
                self.connected.store(false, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Tells every instance that revocations were written. Best effort: an
    /// instance that misses it reads the database within a second anyway.
    pub async fn ring(&self) {
        let mut manager = self.manager.clone();
        let sent: redis::RedisResult<usize> = manager.publish(&self.channel, "revoked").await;
        if let Err(e) = sent {
            tracing::debug!(error = %e, "Redis publish failed; other instances will poll");
        }
    }

    /// A handle on the same multiplexed connection (shared rate limits).
    pub fn connection(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// Whether Redis answers (readiness).
    pub async fn ping(&self) -> bool {
        let mut manager = self.manager.clone();
        let answer: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut manager).await;
        answer.is_ok()
    }
}
