//! The summariser: [`MetadataHandle`] summarises batches under the caps of a
//! [`MetadataConfig`] until its summaries are taken.
//!
//! ```yaml
//! processors:
//!   metadata:
//!     max_templates: 2000        # per service
//!     max_attribute_keys: 256    # per service, signal and location
//!     max_names: 2000            # metric and span names per service
//!     max_services: 1000
//!     flush_interval: 60s
//!     mining:
//!       depth: 4
//!       similarity_threshold: 0.6
//!       max_children: 100
//!       max_tokens: 128
//! ```
//!
//! Each `metadata` processor instance (one per component id, shared by every pipeline that
//! lists it; the processor is weir-metadata's) keeps its summaries in a [`MetadataHandle`]
//! that it puts in its build's `weir_api::Shared` under the component id (`metadata`,
//! `metadata/edge`). Whoever ships or stores summaries (the `catalog` exporter, built in the
//! same service) gets the handle from there and calls [`MetadataHandle::take`] every
//! [`MetadataHandle::flush_interval`]; `take` returns what was seen since the previous take,
//! so merging the takes gives the whole. The `catalog` exporter also summarises what it
//! receives itself, with a handle of its own.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_api::{Batch, ConfigErrors, Signal};

use crate::drain::MinerConfig;
use crate::extract::{Accumulator, Limits};
use crate::summary::CatalogSummary;

/// Settings of the template miner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MiningConfig {
    /// Parse-tree depth (token count, then `depth - 2` leading tokens). Default: 4.
    pub depth: usize,
    /// Share of a line's word tokens that must agree with a template to join it.
    /// Default: 0.6.
    pub similarity_threshold: f64,
    /// Children per tree node before a wildcard branch is used. Default: 100.
    pub max_children: usize,
    /// Tokens of a line looked at; the rest count as one `<*>`. Default: 128.
    pub max_tokens: usize,
    /// Words one position may show as separate templates before it becomes `<*>`
    /// (`VM Paused` / `VM Resumed` stay apart; user names past this many merge).
    /// 0: widen at once. Default: 3.
    pub max_word_variants: usize,
}

impl Default for MiningConfig {
    fn default() -> Self {
        let m = MinerConfig::default();
        MiningConfig {
            depth: m.depth,
            similarity_threshold: m.similarity_threshold,
            max_children: m.max_children,
            max_tokens: m.max_tokens,
            max_word_variants: m.max_word_variants,
        }
    }
}

/// Config of the `metadata` processor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    /// Log templates kept per service; the least recently seen is evicted past it.
    /// Default: 2000.
    pub max_templates: usize,
    /// Attribute keys kept per service, signal and location (resource or item); the least
    /// recently seen is evicted past it. Default: 256.
    pub max_attribute_keys: usize,
    /// Metric names and span names kept per service. Default: 2000.
    pub max_names: usize,
    /// Services tracked; further services are counted under `(other services)`.
    /// Default: 1000.
    pub max_services: usize,
    /// How often a consumer of the summaries (the `catalog` exporter) should take them.
    /// Default: 60s.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Template-miner settings.
    pub mining: MiningConfig,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        let limits = Limits::default();
        MetadataConfig {
            max_templates: limits.miner.max_templates,
            max_attribute_keys: limits.max_attribute_keys,
            max_names: limits.max_names,
            max_services: limits.max_services,
            flush_interval: Duration::from_secs(60),
            mining: MiningConfig::default(),
        }
    }
}

impl MetadataConfig {
    /// The caps and miner settings this config asks for.
    pub fn limits(&self) -> Limits {
        Limits {
            miner: MinerConfig {
                depth: self.mining.depth,
                similarity_threshold: self.mining.similarity_threshold,
                max_children: self.mining.max_children,
                max_templates: self.max_templates,
                max_tokens: self.mining.max_tokens,
                max_word_variants: self.mining.max_word_variants,
            },
            max_services: self.max_services,
            max_attribute_keys: self.max_attribute_keys,
            max_names: self.max_names,
        }
    }

    /// Every problem, with its YAML path below `path`.
    pub fn validate(&self, path: &str) -> ConfigErrors {
        let mut errors = ConfigErrors::default();
        for (field, message) in self.limits().miner.problems() {
            let at = if field == "max_templates" {
                format!("{path}.max_templates")
            } else {
                format!("{path}.mining.{field}")
            };
            errors.push(at, message);
        }
        for (field, v) in [
            ("max_attribute_keys", self.max_attribute_keys),
            ("max_names", self.max_names),
            ("max_services", self.max_services),
        ] {
            if v == 0 {
                errors.push(format!("{path}.{field}"), "must be at least 1");
            }
        }
        if self.flush_interval.is_zero() {
            errors.push(format!("{path}.flush_interval"), "must be longer than 0s");
        }
        errors
    }
}

/// The summaries of one `metadata` processor instance, one lock per signal so pipelines of
/// different signals do not wait on each other.
pub struct MetadataHandle {
    flush_interval: Duration,
    max_services: usize,
    logs: Mutex<Accumulator>,
    traces: Mutex<Accumulator>,
    metrics: Mutex<Accumulator>,
    /// Batches counted and not read ([`MetadataHandle::count_unsummarised`]), per service;
    /// a lock of its own, so counting never waits for a batch being summarised.
    unsummarised: Mutex<CatalogSummary>,
}

impl MetadataHandle {
    /// A handle with these settings.
    pub fn new(config: &MetadataConfig) -> Self {
        let limits = config.limits();
        MetadataHandle {
            flush_interval: config.flush_interval,
            max_services: limits.max_services,
            unsummarised: Mutex::new(CatalogSummary::default()),
            logs: Mutex::new(Accumulator::new(limits.clone())),
            traces: Mutex::new(Accumulator::new(limits.clone())),
            metrics: Mutex::new(Accumulator::new(limits)),
        }
    }

    /// How often the summaries should be taken.
    pub fn flush_interval(&self) -> Duration {
        self.flush_interval
    }

    fn accumulator(&self, signal: Signal) -> &Mutex<Accumulator> {
        match signal {
            Signal::Logs => &self.logs,
            Signal::Traces => &self.traces,
            Signal::Metrics => &self.metrics,
        }
    }

    /// Summarises one batch.
    pub fn observe(&self, batch: &Batch) {
        let mut acc = self
            .accumulator(batch.signal())
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        acc.observe(batch);
    }

    /// Counts `batch` without reading its items: per service, its items and encoded bytes
    /// go into the signal's `volume` and `unsummarised` of the next take (see
    /// [`crate::background`]). Services past `max_services` count under
    /// [`crate::extract::OTHER_SERVICES`].
    pub fn count_unsummarised(&self, batch: &Batch) {
        let signal = batch.signal();
        let received = batch
            .context
            .received_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut out = self.unsummarised.lock().unwrap_or_else(|e| e.into_inner());
        crate::extract::unread::volumes(batch, |service, v| {
            let name =
                if out.services.contains_key(service) || out.services.len() < self.max_services {
                    service
                } else {
                    crate::extract::OTHER_SERVICES
                };
            if !out.services.contains_key(name) {
                out.services.insert(name.to_string(), Default::default());
            }
            let Some(svc) = out.services.get_mut(name) else {
                return;
            };
            svc.unsummarised_seen.observe(received);
            let (volume, unsummarised) = match signal {
                Signal::Logs => (&mut svc.logs.volume, &mut svc.logs.unsummarised),
                Signal::Traces => (&mut svc.traces.volume, &mut svc.traces.unsummarised),
                Signal::Metrics => (&mut svc.metrics.volume, &mut svc.metrics.unsummarised),
            };
            for t in [volume, unsummarised] {
                t.items = t.items.saturating_add(v.items);
                t.bytes = t.bytes.saturating_add(v.bytes);
            }
        });
    }

    /// The key value hashes are made with (a random one of this process until
    /// [`MetadataHandle::set_key`]).
    pub fn key(&self) -> crate::key::SketchKey {
        self.logs.lock().unwrap_or_else(|e| e.into_inner()).key()
    }

    /// Hashes values with the deployment's `key` from now on; returns what was gathered
    /// under the previous key (labelled with it), so no summary mixes keys.
    pub fn set_key(&self, key: crate::key::SketchKey) -> CatalogSummary {
        let mut out = CatalogSummary::default();
        for signal in Signal::ALL {
            let part = self
                .accumulator(signal)
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .set_key(key);
            out.merge(&part);
        }
        out
    }

    /// Everything summarised (and counted unsummarised) since the previous take.
    pub fn take(&self) -> CatalogSummary {
        let shed =
            std::mem::take(&mut *self.unsummarised.lock().unwrap_or_else(|e| e.into_inner()));
        let mut out = self.take_summarised();
        // Counted batches join their services; a service only they saw takes a place
        // while there is room, as in the accumulators.
        for (name, s) in shed.services {
            let name = if out.services.contains_key(&name) || out.services.len() < self.max_services
            {
                name
            } else {
                crate::extract::OTHER_SERVICES.to_string()
            };
            out.services
                .entry(name)
                .or_default()
                .merge_within(&s, &crate::summary::MergeCaps::UNLIMITED);
        }
        out
    }

    fn take_summarised(&self) -> CatalogSummary {
        let mut out = CatalogSummary::default();
        for signal in Signal::ALL {
            let part = self
                .accumulator(signal)
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            out.merge(&part);
        }
        out
    }
}
