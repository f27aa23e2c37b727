//! Failed authentication: counted per client address and per account (a token's id, a
//! user's name), locked out with exponential backoff, logged in one line without the
//! secret, and counted in `weir_catalog_auth_failures_total{reason}` and
//! `weir_catalog_auth_refused_total{scope}`.
//!
//! ```yaml
//! extensions:
//!   control_plane:
//!     failed_auth:
//!       max_failures: 10     # failures of one client or account within `window` ...
//!       window: 1m
//!       lockout: 1m          # ... lock it out this long (429 + Retry-After) ...
//!       max_lockout: 1h      # ... doubling at each further lockout, up to this
//! ```
//!
//! While a client address is locked out every request from it gets 429, valid credentials
//! or not (so guessing cannot go on from it). While an account is locked out, every
//! attempt on that account gets 429 before its credentials are checked, from any address.
//! The price: someone who knows a token's id (shown to admins and in the audit log, never
//! secret material) or a user's name can keep that account locked out; the log line and
//! the audit record name the client doing it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use weir_api::Telemetry;

fn default_max_failures() -> u32 {
    10
}
fn default_window() -> Duration {
    Duration::from_secs(60)
}
fn default_lockout() -> Duration {
    Duration::from_secs(60)
}
fn default_max_lockout() -> Duration {
    Duration::from_secs(3600)
}

/// Limits on failed authentication (`extensions.control_plane.failed_auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedAuthLimits {
    /// Failures of one client address, or of one account, within `window` that lock it
    /// out. Default: 10.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// The window failures are counted in. Default: 1m.
    #[serde(default = "default_window", with = "humantime_serde")]
    pub window: Duration,
    /// The first lockout; each further one (without a quiet `max_lockout` between) doubles
    /// it. Default: 1m.
    #[serde(default = "default_lockout", with = "humantime_serde")]
    pub lockout: Duration,
    /// The longest lockout. Default: 1h.
    #[serde(default = "default_max_lockout", with = "humantime_serde")]
    pub max_lockout: Duration,
}

impl Default for FailedAuthLimits {
    fn default() -> Self {
        FailedAuthLimits {
            max_failures: default_max_failures(),
            window: default_window(),
            lockout: default_lockout(),
            max_lockout: default_max_lockout(),
        }
    }
}

impl FailedAuthLimits {
    /// Problems with the values, as (field, message).
    pub fn check(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.max_failures == 0 {
            out.push(("max_failures", "must be at least 1"));
        }
        for (f, d) in [
            ("window", self.window),
            ("lockout", self.lockout),
            ("max_lockout", self.max_lockout),
        ] {
            if d.is_zero() {
                out.push((f, "must be greater than 0"));
            }
        }
        if self.max_lockout < self.lockout {
            out.push(("max_lockout", "must be at least lockout"));
        }
        out
    }
}

/// The client address of a request (set by the listener on every request; absent when a
/// router is called in-process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// `ip` as written in logs and the audit log; `-` when unknown.
pub fn client_str(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "-".to_string(), |ip| ip.to_string())
}

/// A refusal: locked out for `retry_after` more seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    /// `client` or `account`.
    pub scope: &'static str,
    /// Seconds until the lockout ends (at least 1).
    pub retry_after: u64,
}

impl std::fmt::Display for Locked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "too many failed authentications from this {}; retry after {} s",
            self.scope, self.retry_after
        )
    }
}

#[derive(Debug)]
struct Entry {
    failures: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
    /// Lockouts so far (the next is `lockout * 2^strikes`).
    strikes: u32,
    last: Instant,
}

/// Entries kept before quiet ones are forgotten.
const MAX_ENTRIES: usize = 50_000;

/// The limiter. One per control plane.
pub struct Guard {
    limits: FailedAuthLimits,
    entries: Mutex<HashMap<String, Entry>>,
    telemetry: Telemetry,
}

impl Guard {
    /// A limiter counting into `telemetry`.
    pub fn new(limits: FailedAuthLimits, telemetry: &Telemetry) -> Guard {
        Guard {
            limits,
            entries: Mutex::new(HashMap::new()),
            telemetry: telemetry.clone(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> FailedAuthLimits {
        self.limits
    }

    fn key_client(ip: Option<IpAddr>) -> Option<String> {
        ip.map(|ip| format!("client:{ip}"))
    }

    /// Err when the client or the account is locked out now (the refusal is counted).
    pub fn check(&self, client: Option<IpAddr>, account: Option<&str>) -> Result<(), Locked> {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let keys = [
            ("client", Self::key_client(client)),
            ("account", account.map(|a| format!("account:{a}"))),
        ];
        for (scope, key) in keys {
            let Some(key) = key else { continue };
            if let Some(until) = entries.get(&key).and_then(|e| e.locked_until) {
                if until > now {
                    self.telemetry
                        .counter(
                            "weir_catalog_auth_refused",
                            "Requests refused with 429 while their client address or account was locked out after failed authentication",
                            &[("scope", scope.to_string())],
                        )
                        .inc();
                    return Err(Locked {
                        scope,
                        retry_after: (until - now).as_secs().max(1),
                    });
                }
            }
        }
        Ok(())
    }

    /// Records one failed authentication of `client` on `account` (a token id or user
    /// name, when the attempt named one), for `reason` (`missing`, `invalid_token`,
    /// `expired_token`, `bad_sign_in`, ...): logged in one line (no secret), counted, and
    /// counted toward the lockouts. `missing` (no credentials at all) is logged at debug
    /// and not counted toward lockouts.
    pub fn failed(&self, client: Option<IpAddr>, account: Option<&str>, reason: &str) {
        self.telemetry
            .counter(
                "weir_catalog_auth_failures",
                "Failed authentications, by reason",
                &[("reason", reason.to_string())],
            )
            .inc();
        let shown = client_str(client);
        let acct = account.unwrap_or("-");
        if reason == "missing" {
            tracing::debug!(client = %shown, reason, "authentication failed");
            return;
        }
        tracing::warn!(client = %shown, account = %acct, reason, "authentication failed");
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            let window = self.limits.window;
            entries.retain(|_, e| {
                e.locked_until.is_some_and(|u| u > now) || now.duration_since(e.last) < window
            });
        }
        let keys = [
            ("client", Self::key_client(client)),
            ("account", account.map(|a| format!("account:{a}"))),
        ];
        for (scope, key) in keys {
            let Some(key) = key else { continue };
            let e = entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                window_start: now,
                locked_until: None,
                strikes: 0,
                last: now,
            });
            // A long quiet spell forgives earlier lockouts.
            if now.duration_since(e.last) > self.limits.max_lockout
                && e.locked_until.is_none_or(|u| u <= now)
            {
                e.strikes = 0;
            }
            e.last = now;
            if now.duration_since(e.window_start) > self.limits.window {
                e.failures = 0;
                e.window_start = now;
            }
            e.failures += 1;
            if e.failures >= self.limits.max_failures {
                let factor = 1u32.checked_shl(e.strikes.min(20)).unwrap_or(u32::MAX);
                let lock = self
                    .limits
                    .lockout
                    .saturating_mul(factor)
                    .min(self.limits.max_lockout);
                e.locked_until = Some(now + lock);
                e.strikes = e.strikes.saturating_add(1);
                e.failures = 0;
                e.window_start = now;
                self.telemetry
                    .counter(
                        "weir_catalog_auth_lockouts",
                        "Lockouts after repeated failed authentication, by scope",
                        &[("scope", scope.to_string())],
                    )
                    .inc();
                tracing::warn!(
                    scope,
                    client = %shown,
                    account = %acct,
                    seconds = lock.as_secs(),
                    "too many failed authentications: locked out (further attempts get 429 and are counted, not logged)"
                );
            }
        }
    }

    /// A successful sign-in to `account`: its failure count starts again (the client
    /// address's does not: one valid credential must not reset a guesser's count).
    pub fn succeeded(&self, account: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = entries.get_mut(&format!("account:{account}")) {
            e.failures = 0;
        }
    }
}

/// The account a presented token names: `token:<id>` when it has the shape
/// `weir_<12 hex>_<secret>`.
pub fn token_account(token: &str) -> Option<String> {
    let rest = token.strip_prefix("weir_")?;
    let (id, _) = rest.split_once('_')?;
    (id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("token:{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn locks_after_max_failures_and_doubles() {
        let t = Telemetry::new();
        let g = Guard::new(
            FailedAuthLimits {
                max_failures: 3,
                window: Duration::from_secs(60),
                lockout: Duration::from_secs(10),
                max_lockout: Duration::from_secs(25),
            },
            &t,
        );
        for _ in 0..2 {
            g.failed(ip("10.0.0.1"), None, "invalid_token");
            assert!(g.check(ip("10.0.0.1"), None).is_ok());
        }
        g.failed(ip("10.0.0.1"), None, "invalid_token");
        let l = g.check(ip("10.0.0.1"), None).unwrap_err();
        assert_eq!(l.scope, "client");
        assert!((9..=10).contains(&l.retry_after), "{l:?}");
        // Another address is unaffected.
        assert!(g.check(ip("10.0.0.2"), None).is_ok());
        // The next lockout doubles, capped at max_lockout.
        for _ in 0..3 {
            g.failed(ip("10.0.0.1"), None, "invalid_token");
        }
        let l = g.check(ip("10.0.0.1"), None).unwrap_err();
        assert!((19..=20).contains(&l.retry_after), "{l:?}");
        for _ in 0..3 {
            g.failed(ip("10.0.0.1"), None, "invalid_token");
        }
        let l = g.check(ip("10.0.0.1"), None).unwrap_err();
        assert!((24..=25).contains(&l.retry_after), "{l:?}");
        let m = t.encode();
        assert!(
            m.contains("weir_catalog_auth_failures_total{reason=\"invalid_token\"} 9"),
            "{m}"
        );
        assert!(
            m.contains("weir_catalog_auth_refused_total{scope=\"client\"} 3"),
            "{m}"
        );
    }

    #[test]
    fn accounts_lock_from_any_address_and_missing_is_not_counted() {
        let g = Guard::new(
            FailedAuthLimits {
                max_failures: 2,
                ..Default::default()
            },
            &Telemetry::new(),
        );
        g.failed(ip("10.0.0.1"), Some("user:ana"), "bad_sign_in");
        g.failed(ip("10.0.0.2"), Some("user:ana"), "bad_sign_in");
        let l = g.check(ip("10.0.0.3"), Some("user:ana")).unwrap_err();
        assert_eq!(l.scope, "account");
        assert!(g.check(ip("10.0.0.3"), Some("user:bo")).is_ok());
        for _ in 0..5 {
            g.failed(ip("10.0.0.9"), None, "missing");
        }
        assert!(g.check(ip("10.0.0.9"), None).is_ok());
    }

    #[test]
    fn token_accounts_need_the_token_shape() {
        assert_eq!(
            token_account("weir_0123456789ab_secret").as_deref(),
            Some("token:0123456789ab")
        );
        assert_eq!(token_account("weir_xyz_secret"), None);
        assert_eq!(token_account("nonsense"), None);
    }
}
