//! Traces of a service: per span name, its kinds, statuses, durations, roots and leaves.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::parts::{AttributeSchemas, Seen, Volume};
use super::unite_keys;
use crate::sketch::DurationSketch;

/// Spans by status code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusMix {
    /// Unset.
    pub unset: u64,
    /// Ok.
    pub ok: u64,
    /// Error.
    pub error: u64,
}

/// Spans by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KindMix {
    /// Unspecified.
    pub unspecified: u64,
    /// Internal.
    pub internal: u64,
    /// Server.
    pub server: u64,
    /// Client.
    pub client: u64,
    /// Producer.
    pub producer: u64,
    /// Consumer.
    pub consumer: u64,
}

/// One span name of a service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SpanSummary {
    /// Spans and bytes.
    pub volume: Volume,
    /// Kinds.
    pub kinds: KindMix,
    /// Status codes.
    pub status: StatusMix,
    /// Durations (end - start) in milliseconds.
    pub duration_ms: DurationSketch,
    /// Spans without a parent (trace roots).
    pub roots: u64,
    /// Spans no other span of the same batch named as parent: evidence (children may come
    /// in other batches) of leaf spans, e.g. instrumentation noise when `internal`.
    pub childless_in_batch: u64,
    /// Attribute keys seen on these spans (at most 64 kept).
    pub attribute_keys: BTreeSet<String>,
    /// When seen (span start times).
    pub seen: Seen,
}

impl SpanSummary {
    pub(super) fn merge(&mut self, o: &SpanSummary) {
        self.volume.merge(&o.volume);
        self.kinds.unspecified = self.kinds.unspecified.saturating_add(o.kinds.unspecified);
        self.kinds.internal = self.kinds.internal.saturating_add(o.kinds.internal);
        self.kinds.server = self.kinds.server.saturating_add(o.kinds.server);
        self.kinds.client = self.kinds.client.saturating_add(o.kinds.client);
        self.kinds.producer = self.kinds.producer.saturating_add(o.kinds.producer);
        self.kinds.consumer = self.kinds.consumer.saturating_add(o.kinds.consumer);
        self.status.unset = self.status.unset.saturating_add(o.status.unset);
        self.status.ok = self.status.ok.saturating_add(o.status.ok);
        self.status.error = self.status.error.saturating_add(o.status.error);
        self.duration_ms.merge(&o.duration_ms);
        self.roots = self.roots.saturating_add(o.roots);
        self.childless_in_batch = self.childless_in_batch.saturating_add(o.childless_in_batch);
        unite_keys(&mut self.attribute_keys, &o.attribute_keys);
        self.seen.merge(&o.seen);
    }
}

/// Traces of one service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TracesSummary {
    /// All spans.
    pub volume: Volume,
    /// Of `volume`, the spans the edge counted but did not read: its summariser runs below
    /// the data path's priority and, when the edge's CPU is saturated, counts a batch it has
    /// no time for (per service, items and encoded bytes) instead of reading it. The rest
    /// of this section describes `volume - unsummarised`; a catalog scales what it
    /// estimates from it by `volume / (volume - unsummarised)` and says so.
    #[serde(skip_serializing_if = "Volume::is_zero")]
    pub unsummarised: Volume,
    /// Per span name, masked like log lines (`GET /users/<*>`).
    pub spans: BTreeMap<String, SpanSummary>,
    /// Attribute schemas.
    pub attributes: AttributeSchemas,
}
