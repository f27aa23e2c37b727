//! `retry_on_failure`: exponential backoff with jitter, bounded by a total time.

use std::time::Duration;

use rand::Rng;
use serde::Deserialize;
use tokio::time::Instant;
use weir_api::ConfigErrors;

/// The `retry_on_failure` section of an OTLP exporter (the collector's names and defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// Whether retryable failures are retried. Default `true`.
    pub enabled: bool,
    /// Wait before the first retry. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub initial_interval: Duration,
    /// Longest wait between two attempts. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub max_interval: Duration,
    /// How long one batch is retried before it is dropped (logged, and counted in
    /// `weir_exporter_send_failed_items` and `weir_exporter_retry_expired_items`); `0` means
    /// no limit. Default `300s` with an in-memory queue (the collector's); with
    /// `sending_queue.storage` the default is no limit: stored data is kept until it is
    /// delivered, and a maximum age is opt-in.
    #[serde(default, with = "humantime_serde")]
    pub max_elapsed_time: Option<Duration>,
    /// Factor the wait grows by after each attempt. Default `1.5`.
    pub multiplier: f64,
    /// Jitter: each wait is drawn from `wait * [1 - f, 1 + f]`. Default `0.5`.
    pub randomization_factor: f64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            enabled: true,
            initial_interval: Duration::from_secs(5),
            max_interval: Duration::from_secs(30),
            max_elapsed_time: None,
            multiplier: 1.5,
            randomization_factor: 0.5,
        }
    }
}

/// `max_elapsed_time` when none is configured and the queue is in memory.
pub const DEFAULT_MAX_ELAPSED_TIME: Duration = Duration::from_secs(300);

impl RetrySettings {
    /// How long a batch is retried: `max_elapsed_time`, or its default; zero means no limit.
    pub fn elapsed_limit(&self) -> Duration {
        self.max_elapsed_time.unwrap_or(DEFAULT_MAX_ELAPSED_TIME)
    }

    /// Reports every out-of-range value below `path` (`exporters.otlp.retry_on_failure`).
    pub fn validate(&self, path: &str, errors: &mut ConfigErrors) {
        if !self.enabled {
            return;
        }
        if self.initial_interval.is_zero() {
            errors.push(
                format!("{path}.initial_interval"),
                "must be greater than 0 when retries are enabled",
            );
        }
        if self.max_interval < self.initial_interval {
            errors.push(
                format!("{path}.max_interval"),
                format!(
                    "must not be shorter than initial_interval ({})",
                    humantime::format_duration(self.initial_interval)
                ),
            );
        }
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            errors.push(
                format!("{path}.multiplier"),
                format!("must be at least 1, got {}", self.multiplier),
            );
        }
        if !(0.0..=1.0).contains(&self.randomization_factor) {
            errors.push(
                format!("{path}.randomization_factor"),
                format!("must be between 0 and 1, got {}", self.randomization_factor),
            );
        }
    }
}

/// The retry schedule of one batch.
#[derive(Debug)]
pub struct Backoff<'a> {
    settings: &'a RetrySettings,
    next_interval: Duration,
    started: Instant,
}

impl<'a> Backoff<'a> {
    /// A schedule starting now.
    pub fn new(settings: &'a RetrySettings) -> Self {
        Backoff {
            settings,
            next_interval: settings.initial_interval,
            started: Instant::now(),
        }
    }

    /// The wait before the next attempt, or `None` when retrying is off or the next attempt
    /// would start after `max_elapsed_time`. A server's `server_delay` (Retry-After,
    /// RetryInfo) is honoured: the wait is never shorter than it.
    pub fn next_delay(&mut self, server_delay: Option<Duration>) -> Option<Duration> {
        if !self.settings.enabled {
            return None;
        }
        let base = self.next_interval.as_secs_f64();
        let spread = base * self.settings.randomization_factor;
        let jittered = if spread > 0.0 {
            rand::rng().random_range(base - spread..=base + spread)
        } else {
            base
        };
        let mut delay = Duration::from_secs_f64(jittered.max(0.0));
        let grown = self.next_interval.as_secs_f64() * self.settings.multiplier;
        self.next_interval =
            Duration::from_secs_f64(grown.min(self.settings.max_interval.as_secs_f64()));
        if let Some(server) = server_delay {
            delay = delay.max(server);
        }
        let limit = self.settings.elapsed_limit();
        if !limit.is_zero() && self.started.elapsed() + delay > limit {
            return None;
        }
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: serde_json::Value) -> RetrySettings {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn defaults_are_the_collectors() {
        let s = settings(serde_json::json!({}));
        assert_eq!(s, RetrySettings::default());
        assert_eq!(s.initial_interval, Duration::from_secs(5));
        assert_eq!(s.max_elapsed_time, None);
        assert_eq!(s.elapsed_limit(), Duration::from_secs(300));
        let s =
            settings(serde_json::json!({"initial_interval": "100ms", "max_elapsed_time": "1m"}));
        assert_eq!(s.initial_interval, Duration::from_millis(100));
        assert_eq!(s.max_elapsed_time, Some(Duration::from_secs(60)));
        assert_eq!(s.elapsed_limit(), Duration::from_secs(60));
        let s = settings(serde_json::json!({"max_elapsed_time": "0s"}));
        assert_eq!(s.elapsed_limit(), Duration::ZERO);
    }

    #[test]
    fn delays_grow_within_jitter_and_cap() {
        let s = RetrySettings {
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(3),
            max_elapsed_time: Some(Duration::ZERO),
            ..Default::default()
        };
        let mut b = Backoff::new(&s);
        // Expected centres: 1, 1.5, 2.25, 3, 3 (capped); jitter +-50%.
        for centre in [1.0, 1.5, 2.25, 3.0, 3.0] {
            let d = b.next_delay(None).unwrap().as_secs_f64();
            assert!(
                d >= centre * 0.5 - 1e-9 && d <= centre * 1.5 + 1e-9,
                "{d} vs {centre}"
            );
        }
    }

    #[test]
    fn server_delay_wins_and_elapsed_limit_stops() {
        let s = RetrySettings {
            initial_interval: Duration::from_millis(10),
            randomization_factor: 0.0,
            max_elapsed_time: Some(Duration::from_secs(2)),
            ..Default::default()
        };
        let mut b = Backoff::new(&s);
        assert_eq!(b.next_delay(None), Some(Duration::from_millis(10)));
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(1))),
            Some(Duration::from_secs(1))
        );
        assert_eq!(b.next_delay(Some(Duration::from_secs(3))), None);
        let off = RetrySettings {
            enabled: false,
            ..Default::default()
        };
        assert_eq!(Backoff::new(&off).next_delay(None), None);
    }

    #[test]
    fn validation_names_each_field() {
        let s = settings(
            serde_json::json!({"multiplier": 0.5, "randomization_factor": 2.0, "initial_interval": "0s"}),
        );
        let mut errors = ConfigErrors::default();
        s.validate("exporters.otlp.retry_on_failure", &mut errors);
        let text = errors.to_string();
        assert_eq!(errors.0.len(), 3, "{text}");
        assert!(
            text.contains(
                "exporters.otlp.retry_on_failure.multiplier: must be at least 1, got 0.5"
            ),
            "{text}"
        );
        assert!(text.contains("exporters.otlp.retry_on_failure.randomization_factor: must be between 0 and 1, got 2"), "{text}");
        assert!(
            text.contains(
                "exporters.otlp.retry_on_failure.initial_interval: must be greater than 0"
            ),
            "{text}"
        );
    }
}
