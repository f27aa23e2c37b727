//! `weir catalog connect prometheus` (one snapshot) and the control plane's
//! `sources.prometheus` config and poller (a snapshot per interval, stored).

use std::time::Duration;

use serde::Deserialize;

use super::{
    check_url, collect, CollectLimits, PromAuth, PromClient, Snapshot, DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
};

/// Stores one snapshot of `c` in the control plane; returns it.
pub async fn connect(
    control: &crate::control::ControlPlane,
    c: &PromClient,
    limits: &CollectLimits,
) -> Result<Snapshot, String> {
    let snap = collect(c, limits, crate::store::now_secs())
        .await
        .map_err(|e| e.to_string())?;
    control
        .store()
        .put_prometheus_snapshot(&snap)
        .map_err(|e| e.to_string())?;
    Ok(snap)
}

/// A `sources.prometheus` entry of the `control_plane` extension.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromSourceConfig {
    /// The server's base URL (`http://prometheus:9090`, with a path prefix if it has one).
    pub endpoint: String,
    /// How often it is read. Default: 5m.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Basic authentication: `username` and `password_file`.
    #[serde(default)]
    pub basic_auth: Option<BasicAuthConfig>,
    /// A file holding a bearer token.
    #[serde(default)]
    pub bearer_token_file: Option<String>,
    /// TLS for `https://` endpoints (weir-tls client settings). Default: system roots.
    #[serde(default)]
    pub tls: weir_tls::TlsClientSettings,
    /// Cap on one API answer. Default: 32 MiB.
    #[serde(default = "default_max_response")]
    pub max_response_bytes: usize,
    /// Timeout of one request. Default: 30s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

/// Basic authentication settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// User name.
    pub username: String,
    /// File holding the password.
    pub password_file: String,
}

fn default_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_max_response() -> usize {
    DEFAULT_MAX_RESPONSE_BYTES
}
fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

impl PromSourceConfig {
    /// Problems with the settings, as (field, message).
    pub fn check(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Err(e) = check_url(&self.endpoint) {
            out.push(("endpoint".into(), e));
        }
        if self.interval < Duration::from_secs(1) {
            out.push(("interval".into(), "must be at least 1s".into()));
        }
        if self.basic_auth.is_some() && self.bearer_token_file.is_some() {
            out.push((
                "bearer_token_file".into(),
                "choose basic_auth or bearer_token_file, not both".into(),
            ));
        }
        if self.max_response_bytes < 1024 {
            out.push(("max_response_bytes".into(), "must be at least 1024".into()));
        }
        if self.timeout.is_zero() {
            out.push(("timeout".into(), "must be greater than 0".into()));
        }
        out
    }

    /// The client (credential files are read now, so a rotated file is picked up at the
    /// next read).
    pub fn client(&self, field: &str) -> Result<PromClient, String> {
        let auth = PromAuth::from_files(
            self.basic_auth.as_ref().map(|b| b.username.as_str()),
            self.basic_auth
                .as_ref()
                .map(|b| std::path::Path::new(&b.password_file)),
            self.bearer_token_file.as_deref().map(std::path::Path::new),
        )?;
        let tls = self
            .tls
            .load(&format!("{field}.tls"), |p: &str| {
                std::path::PathBuf::from(p)
            })
            .map_err(|e| e.to_string())?;
        PromClient::new(
            &self.endpoint,
            auth,
            &tls,
            self.max_response_bytes,
            self.timeout,
        )
    }
}

/// Reads `cfg` every `interval` into the store until `stop` turns true. Failures are logged
/// (naming the API path) and retried at the next interval.
pub async fn poll(
    control: std::sync::Arc<crate::control::ControlPlane>,
    cfg: PromSourceConfig,
    field: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match cfg.client(&field) {
            Ok(client) => match connect(&control, &client, &CollectLimits::default()).await {
                Ok(s) => tracing::info!(
                    source = %s.source,
                    metrics = s.metrics.len(),
                    series = s.series(),
                    "prometheus source read"
                ),
                Err(e) => tracing::warn!(source = %field, error = %e, "prometheus source not read"),
            },
            Err(e) => tracing::warn!(source = %field, error = %e, "prometheus source not read"),
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.interval) => {}
            _ = stop.changed() => return,
        }
    }
}
