//! Scrape configs resolved into jobs and their targets: intervals and timeouts, the
//! scrape URL with its params, credentials read from files, the `Authorization` header,
//! and the validation that names what is wrong and where.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use weir_api::{parse_component_config, ConfigErrors};

use super::config::{parse_size, PrometheusReceiverSettings, StaticConfig};
use super::DEFAULT_BODY_LIMIT;
use super::{discovery, relabel};

/// One target, ready to scrape.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub(super) job: String,
    /// `host:port`.
    pub(super) instance: String,
    pub(super) url: http::Uri,
    pub(super) scheme: String,
    pub(super) interval: Duration,
    pub(super) timeout: Duration,
    pub(super) honor_labels: bool,
    pub(super) honor_timestamps: bool,
    pub(super) sample_limit: usize,
    pub(super) body_limit: u64,
    /// Target labels other than job and instance.
    pub(super) labels: Vec<(String, String)>,
    /// `Authorization` header value.
    pub(super) auth: Option<String>,
    /// `metric_relabel_configs`.
    pub(super) metric_relabel: Arc<Vec<relabel::Rule>>,
}

/// One scrape config, checked: what each of its targets is built from.
#[derive(Debug)]
pub(super) struct Job {
    pub(super) name: String,
    /// The config path (`receivers.prometheus.config.scrape_configs[0]`).
    pub(super) path: String,
    scheme: String,
    metrics_path: String,
    params: BTreeMap<String, Vec<String>>,
    interval: Duration,
    timeout: Duration,
    honor_labels: bool,
    honor_timestamps: bool,
    sample_limit: usize,
    body_limit: u64,
    auth: Option<String>,
    target_rules: Vec<relabel::Rule>,
    metric_rules: Arc<Vec<relabel::Rule>>,
    /// Client TLS for `https` targets.
    pub(super) tls: weir_tls::TlsClientSettings,
    static_configs: Vec<StaticConfig>,
    pub(super) file_sd: Vec<discovery::FileSdConfig>,
}

impl Job {
    /// The target at `address` with its group's `labels`, relabelled: `Ok(None)` when
    /// `relabel_configs` drop it, `Err` when what is left does not make a URL.
    pub(super) fn target(
        &self,
        group_labels: &BTreeMap<String, String>,
        address: &str,
    ) -> Result<Option<Target>, String> {
        // The target's labels as Prometheus builds them, then relabelled.
        let mut labels: BTreeMap<String, String> = group_labels.clone();
        labels.insert("__address__".into(), address.to_string());
        labels.insert("__scheme__".into(), self.scheme.clone());
        labels.insert("__metrics_path__".into(), self.metrics_path.clone());
        labels.insert(
            "__scrape_interval__".into(),
            humantime::format_duration(self.interval).to_string(),
        );
        labels.insert(
            "__scrape_timeout__".into(),
            humantime::format_duration(self.timeout).to_string(),
        );
        labels
            .entry("job".into())
            .or_insert_with(|| self.name.clone());
        for (name, values) in &self.params {
            if let Some(v) = values.first() {
                labels.insert(format!("__param_{name}"), v.clone());
            }
        }
        if !relabel::apply(&self.target_rules, &mut labels) {
            return Ok(None);
        }
        let get = |n: &str| labels.get(n).cloned().unwrap_or_default();
        let address = get("__address__");
        let scheme = get("__scheme__");
        let mut query: Vec<String> = Vec::new();
        for (name, v) in &labels {
            if let Some(param) = name.strip_prefix("__param_") {
                query.push(format!("{}={}", encode(param), encode(v)));
                for more in self.params.get(param).into_iter().flatten().skip(1) {
                    query.push(format!("{}={}", encode(param), encode(more)));
                }
            }
        }
        let mut url = format!("{scheme}://{address}{}", get("__metrics_path__"));
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        let uri = match url.parse::<http::Uri>() {
            Ok(u)
                if u.host().is_some()
                    && !address.contains('/')
                    && (scheme == "http" || scheme == "https") =>
            {
                u
            }
            _ => {
                return Err(format!(
                    "{address:?} (after relabelling) does not make a URL: {url:?}"
                ))
            }
        };
        let instance = labels
            .get("instance")
            .cloned()
            .unwrap_or_else(|| address.clone());
        let job = get("job");
        let target_labels = labels
            .iter()
            .filter(|(k, _)| !k.starts_with("__") && *k != "job" && *k != "instance")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Some(Target {
            job,
            instance,
            url: uri,
            scheme,
            interval: self.interval,
            timeout: self.timeout,
            honor_labels: self.honor_labels,
            honor_timestamps: self.honor_timestamps,
            sample_limit: self.sample_limit,
            body_limit: self.body_limit,
            labels: target_labels,
            auth: self.auth.clone(),
            metric_relabel: self.metric_rules.clone(),
        }))
    }

    /// The targets of `static_configs`; problems pushed under their config path.
    pub(super) fn static_targets(&self, errors: &mut ConfigErrors) -> Vec<Target> {
        let mut out = Vec::new();
        for (j, st) in self.static_configs.iter().enumerate() {
            for (k, t) in st.targets.iter().enumerate() {
                match self.target(&st.labels, t) {
                    Ok(Some(t)) => out.push(t),
                    Ok(None) => {}
                    Err(e) => {
                        errors.push(format!("{}.static_configs[{j}].targets[{k}]", self.path), e)
                    }
                }
            }
        }
        out
    }
}

impl Target {
    /// What makes two targets the same one (Prometheus: the same label set).
    pub(super) fn key(&self) -> String {
        let mut k = format!("{}\u{1}{}\u{1}{}", self.url, self.job, self.instance);
        for (n, v) in &self.labels {
            k.push('\u{1}');
            k.push_str(n);
            k.push('=');
            k.push_str(v);
        }
        k
    }
}

fn read_secret(file: &str, path: &str, errors: &mut ConfigErrors) -> String {
    match std::fs::read_to_string(file) {
        Ok(s) => s.trim().to_string(),
        Err(e) => {
            errors.push(path, format!("cannot read {file}: {e}"));
            String::new()
        }
    }
}

/// The static targets of a config (tests).
#[cfg(test)]
pub(super) fn parse_targets(
    config: &serde_json::Value,
    path: &str,
) -> Result<Vec<Target>, ConfigErrors> {
    let jobs = parse_jobs(config, path)?;
    let mut errors = ConfigErrors::default();
    let targets = jobs
        .iter()
        .flat_map(|j| j.static_targets(&mut errors))
        .collect();
    errors.into_result(targets)
}

/// Checks the config: the jobs, with their static targets checked too.
pub(super) fn parse_jobs(config: &serde_json::Value, path: &str) -> Result<Vec<Job>, ConfigErrors> {
    use base64_engine::encode as b64;
    let s: PrometheusReceiverSettings = parse_component_config(config, path)?;
    let mut errors = ConfigErrors::default();
    let g = &s.config.global;
    let global_interval = g.scrape_interval.unwrap_or(Duration::from_secs(60));
    let global_timeout = g.scrape_timeout.unwrap_or(Duration::from_secs(10));
    if global_timeout > global_interval {
        errors.push(
            format!("{path}.config.global.scrape_timeout"),
            format!(
                "{global_timeout:?} is longer than global.scrape_interval ({global_interval:?})"
            ),
        );
    }
    let mut jobs_out = Vec::new();
    let mut jobs = std::collections::HashSet::new();
    if s.config.scrape_configs.is_empty() {
        errors.push(
            format!("{path}.config.scrape_configs"),
            "must list at least one job",
        );
    }
    for (i, sc) in s.config.scrape_configs.iter().enumerate() {
        {
            let p = format!("{path}.config.scrape_configs[{i}]");
            if sc.job_name.is_empty() {
                errors.push(format!("{p}.job_name"), "is required");
            } else if !jobs.insert(sc.job_name.clone()) {
                errors.push(
                    format!("{p}.job_name"),
                    format!("{:?} is used twice", sc.job_name),
                );
            }
            let tls = sc
                .tls_config
                .clone()
                .unwrap_or_default()
                .settings(&format!("{p}.tls_config"), &mut errors);
            discovery::validate(
                &sc.file_sd_configs,
                &format!("{p}.file_sd_configs"),
                &mut errors,
            );
            let target_rules = relabel::compile(
                &sc.relabel_configs,
                &format!("{p}.relabel_configs"),
                &mut errors,
            );
            let metric_rules = Arc::new(relabel::compile(
                &sc.metric_relabel_configs,
                &format!("{p}.metric_relabel_configs"),
                &mut errors,
            ));
            let interval = sc.scrape_interval.unwrap_or(global_interval);
            let timeout = sc.scrape_timeout.unwrap_or(global_timeout.min(interval));
            if interval.is_zero() {
                errors.push(format!("{p}.scrape_interval"), "must be greater than 0");
            }
            if timeout.is_zero() || timeout > interval {
                errors.push(
                    format!("{p}.scrape_timeout"),
                    format!("must be greater than 0 and at most scrape_interval ({interval:?}), got {timeout:?}"),
                );
            }
            if sc.scheme != "http" && sc.scheme != "https" {
                errors.push(
                    format!("{p}.scheme"),
                    format!("{:?}: must be http or https", sc.scheme),
                );
            }
            if !sc.metrics_path.starts_with('/') {
                errors.push(format!("{p}.metrics_path"), "must start with /");
            }
            let body_limit = match &sc.body_size_limit {
                None => DEFAULT_BODY_LIMIT,
                Some(v) => match parse_size(v) {
                    Some(0) => DEFAULT_BODY_LIMIT,
                    Some(n) => n,
                    None => {
                        errors.push(
                            format!("{p}.body_size_limit"),
                            format!("{v} is not a size (1000, 10MB, 1GiB)"),
                        );
                        0
                    }
                },
            };
            let mut auth = None;
            if let Some(b) = &sc.basic_auth {
                let password = match (&b.password, &b.password_file) {
                    (Some(pw), None) => pw.clone(),
                    (None, Some(f)) => {
                        read_secret(f, &format!("{p}.basic_auth.password_file"), &mut errors)
                    }
                    (None, None) => String::new(),
                    (Some(_), Some(_)) => {
                        errors.push(
                            format!("{p}.basic_auth"),
                            "set password or password_file, not both",
                        );
                        String::new()
                    }
                };
                auth = Some(format!(
                    "Basic {}",
                    b64(&format!("{}:{password}", b.username))
                ));
            }
            let bearer = match (&sc.authorization, &sc.bearer_token) {
                (Some(a), None) => {
                    let creds = match (&a.credentials, &a.credentials_file) {
                        (Some(c), None) => c.clone(),
                        (None, Some(f)) => read_secret(
                            f,
                            &format!("{p}.authorization.credentials_file"),
                            &mut errors,
                        ),
                        _ => {
                            errors.push(
                                format!("{p}.authorization"),
                                "set one of credentials and credentials_file",
                            );
                            String::new()
                        }
                    };
                    Some(format!("{} {creds}", a.kind.as_deref().unwrap_or("Bearer")))
                }
                (None, Some(t)) => Some(format!("Bearer {t}")),
                (None, None) => None,
                (Some(_), Some(_)) => {
                    errors.push(
                        format!("{p}.bearer_token"),
                        "set authorization or bearer_token, not both",
                    );
                    None
                }
            };
            let bearer = match (bearer, &sc.bearer_token_file) {
                (b, None) => b,
                (None, Some(f)) => Some(format!(
                    "Bearer {}",
                    read_secret(f, &format!("{p}.bearer_token_file"), &mut errors)
                )),
                (Some(_), Some(_)) => {
                    errors.push(
                        format!("{p}.bearer_token_file"),
                        "set one of authorization, bearer_token and bearer_token_file",
                    );
                    None
                }
            };
            if bearer.is_some() && auth.is_some() {
                errors.push(
                    format!("{p}.basic_auth"),
                    "set basic_auth or authorization, not both",
                );
            }
            let auth = auth.or(bearer);
            let job = Job {
                name: sc.job_name.clone(),
                path: p,
                scheme: sc.scheme.clone(),
                metrics_path: sc.metrics_path.clone(),
                params: sc.params.clone(),
                interval,
                timeout,
                honor_labels: sc.honor_labels,
                honor_timestamps: sc.honor_timestamps,
                sample_limit: sc.sample_limit,
                body_limit,
                auth,
                target_rules,
                metric_rules,
                tls,
                static_configs: sc.static_configs.clone(),
                file_sd: sc.file_sd_configs.clone(),
            };
            job.static_targets(&mut errors);
            jobs_out.push(job);
        }
    }
    errors.into_result(jobs_out)
}

pub(super) mod base64_engine {
    /// Standard base64 with padding (for basic auth).
    pub fn encode(s: &str) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let b = s.as_bytes();
        let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
        for chunk in b.chunks(3) {
            let n = (chunk[0] as u32) << 16
                | (chunk.get(1).copied().unwrap_or(0) as u32) << 8
                | chunk.get(2).copied().unwrap_or(0) as u32;
            out.push(T[(n >> 18) as usize & 63] as char);
            out.push(T[(n >> 12) as usize & 63] as char);
            out.push(if chunk.len() > 1 {
                T[(n >> 6) as usize & 63] as char
            } else {
                '='
            });
            out.push(if chunk.len() > 2 {
                T[n as usize & 63] as char
            } else {
                '='
            });
        }
        out
    }
}

pub(super) fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
