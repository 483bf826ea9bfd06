//! Rate limits (GCRA: a sliding window without counters to reset) and the
//! login lock-out rules of API.md.
//!
//! Per-address budgets live in Redis when it is configured, so every
//! instance draws from the same one (one Lua script, Redis's own clock), and
//! in memory otherwise; if Redis does not answer, the local budget applies
//! rather than refusing logins. Lock-outs live in the database.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

/// `N` events per `period`: the form of every `…_RATE_…` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

impl std::str::FromStr for Rate {
    type Err = String;

    /// `N/s`, `N/m` or `N/h`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (n, unit) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a rate like 30/m"))?;
        let count: u32 = n
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{s:?}: the count must be a positive integer"))?;
        let period = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            other => return Err(format!("{s:?}: unit {other:?} is not s, m or h")),
        };
        Ok(Self { count, period })
    }
}

impl Rate {
    /// The spacing of events at the sustained rate.
    fn interval(&self) -> Duration {
        self.period / self.count
    }
}

/// GCRA in Lua: the theoretical arrival time per key, Redis's clock, one
/// round trip. Returns 0 when allowed, else microseconds to wait.
const GCRA: &str = r"
local period = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local earliest = tat - (period - interval)
if now < earliest then return math.ceil(earliest - now) end
local ttl = math.ceil((tat + interval - now) / 1000) + 1
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', ttl)
return 0
";

pub struct Limiter {
    redis: Option<(ConnectionManager, String)>,
    script: redis::Script,
    /// key → theoretical arrival time.
    local: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("shared", &self.redis.is_some())
            .finish_non_exhaustive()
    }
}

impl Limiter {
    /// `redis`: a connection and the key prefix, to share budgets.
    pub fn new(redis: Option<(ConnectionManager, String)>) -> Self {
        Self {
            redis,
            script: redis::Script::new(GCRA),
            local: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one event from the budget of `key` in `bucket`; `Err(wait)`
    /// when there is none left (and then nothing is taken).
    pub async fn take(&self, bucket: &str, key: &str, rate: Rate) -> Result<(), Duration> {
        if let Some((manager, prefix)) = &self.redis {
            let mut manager = manager.clone();
            let answer: redis::RedisResult<i64> = self
                .script
                .key(format!("{prefix}rate:{bucket}:{key}"))
                .arg(micros(rate.period))
                .arg(micros(rate.interval()))
                .invoke_async(&mut manager)
                .await;
            match answer {
                Ok(0) => return Ok(()),
                Ok(wait) => return Err(Duration::from_micros(wait.unsigned_abs())),
                Err(e) => {
                    tracing::warn!(error = %e, "shared rate limit unavailable; using the local one")
                }
            }
        }
        self.take_local(&format!("{bucket}:{key}"), rate, Instant::now())
    }

    fn take_local(&self, key: &str, rate: Rate, now: Instant) -> Result<(), Duration> {
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let tat = local.get(key).copied().unwrap_or(now).max(now);
        let earliest = tat
            .checked_sub(rate.period - rate.interval())
            .unwrap_or(now);
        if now < earliest {
            return Err(earliest - now);
        }
        local.insert(key.to_owned(), tat + rate.interval());
        Ok(())
    }

    /// Drops local entries whose budget is full again (the map would
    /// otherwise grow with every address ever seen).
    pub fn shrink(&self) {
        let now = Instant::now();
        self.local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, tat| *tat > now);
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Whole seconds until `wait` has passed, at least 1: the `Retry-After`.
pub fn retry_after(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            "30/m".parse(),
            Ok(Rate {
                count: 30,
                period: Duration::from_secs(60)
            })
        );
        assert_eq!(
            "50/h".parse::<Rate>().map(|r| r.period),
            Ok(Duration::from_secs(3600))
        );
        for bad in ["30", "0/m", "x/m", "3/d", "-1/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn local_gcra_allows_the_burst_then_spaces_events() {
        let limiter = Limiter::new(None);
        let rate: Rate = "3/m".parse().expect("rate");
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take_local("k", rate, start).is_ok());
        }
        let wait = limiter
            .take_local("k", rate, start)
            .expect_err("fourth is refused");
        assert!(
            wait <= Duration::from_secs(20) && wait > Duration::from_secs(19),
            "{wait:?}"
        );
        // A refused attempt takes nothing: after the wait, exactly one more.
        assert!(limiter.take_local("k", rate, start + wait).is_ok());
        assert!(limiter.take_local("k", rate, start + wait).is_err());
        assert!(
            limiter.take_local("other", rate, start).is_ok(),
            "keys are independent"
        );
        assert_eq!(retry_after(Duration::from_millis(1500)), 2);
    }
}
