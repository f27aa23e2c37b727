//! The write path of staged ingest: [`Store::persist`] writes every service that has a delta
//! once (merged into its stored row under the caps), the new edge/service pairs, the edges'
//! sequence numbers and the buffered sync reports, in one transaction (group commit).
//!
//! On a database several control planes share (PostgreSQL), the transaction holds the
//! store's write lock (`crate::db`), so the stored row it merges into is the latest one;
//! the change number that says whether the decoded rows are current is read under that
//! lock; and a numbered summary whose number the database already holds (an edge sent it
//! again to another replica after the first one applied it and failed to answer) is left
//! out: every summary counts once whichever replica it reached.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::db::{params, OptionalExtension, TransactionBehavior};
use weir_summary::summary::ServiceSummary;

use super::{decode_stored, lock, merge_service, Decoded, Delta, Prevs, Written};
use crate::ingest::ALL_SIGNALS;
use crate::store::Store;
use crate::CatalogError;

/// The sequence numbers the database held for the streams of numbered deltas.
type Held = HashMap<(String, String), u64>;

impl Store {
    /// Writes what is staged: every service with a delta once (merged into its stored row
    /// under the caps), the new edge/service pairs, the edges' sequence numbers and the
    /// buffered sync reports, in one transaction. On failure everything stays staged for
    /// the next call. Returns whether anything was written.
    pub fn persist(&self) -> Result<bool, CatalogError> {
        let _one = lock(&self.fast.persisting);
        self.persist_locked()
    }

    pub(super) fn persist_locked(&self) -> Result<bool, CatalogError> {
        let (deltas, pairs, streams) = {
            let mut s = lock(&self.fast.staged);
            let deltas = std::mem::take(&mut s.deltas);
            let pairs = std::mem::take(&mut s.new_pairs);
            let keys: Vec<_> = s.dirty_streams.drain().collect();
            let streams: Vec<((String, String), u64)> = keys
                .into_iter()
                .map(|k| {
                    let n = s.streams.get(&k).copied().unwrap_or(0);
                    (k, n)
                })
                .collect();
            (deltas, pairs, streams)
        };
        let syncs = std::mem::take(&mut *lock(&self.fast.syncs));
        let touches = std::mem::take(&mut *lock(&self.fast.touches));
        if deltas.is_empty()
            && pairs.is_empty()
            && streams.is_empty()
            && syncs.is_empty()
            && touches.is_empty()
        {
            return Ok(false);
        }
        let cfg = self.ingest_config();
        let shared = self.fast.shared.load(Ordering::Relaxed);
        // Merged outside the connection's lock, from the decoded rows, when they are current
        // (one delta per service: not on a shared database).
        let (dv_cached, prevs): (Option<i64>, Prevs<'_>) = {
            let d = lock(&self.fast.decoded);
            (
                d.data_version.filter(|_| !shared),
                deltas
                    .keys()
                    .filter_map(|(s, _)| d.rows.get(s).map(|r| (s.as_str(), r.clone())))
                    .collect(),
            )
        };
        let mut merged: HashMap<&str, (ServiceSummary, String)> = HashMap::new();
        if dv_cached.is_some() {
            for ((service, _), d) in &deltas {
                if let Some((prev, _, _)) = prevs.get(service.as_str()) {
                    merged.insert(service, merge_service(prev, &d.add, &cfg)?);
                }
            }
        }
        let caps = cfg.limits.store_caps();
        let result = (|| -> Result<(i64, Written, Held), CatalogError> {
            let mut conn = self.lock();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Under the write lock: no other commit comes between this look and ours.
            let dv = self.watch_with(&tx).unwrap_or(-1);
            let fresh = dv_cached == Some(dv);
            // The numbers the database holds for the streams of numbered deltas.
            let mut held: Held = HashMap::new();
            for (_, numbered) in deltas.keys() {
                if let Some((edge, stream, _)) = numbered {
                    let k = (edge.clone(), stream.clone());
                    if held.contains_key(&k) {
                        continue;
                    }
                    let n: Option<i64> = tx
                        .query_row(
                            "SELECT seq FROM ingest_streams WHERE edge = ?1 AND stream = ?2",
                            params![edge, stream],
                            |r| r.get(0),
                        )
                        .optional()?;
                    held.insert(k, n.unwrap_or(0).max(0) as u64);
                }
            }
            let mut by_service: HashMap<&str, Vec<&Delta>> = HashMap::new();
            let mut left_out = 0usize;
            for ((service, numbered), d) in &deltas {
                if let Some((edge, stream, n)) = numbered {
                    if held
                        .get(&(edge.clone(), stream.clone()))
                        .is_some_and(|h| h >= n)
                    {
                        left_out += 1;
                        continue;
                    }
                }
                by_service.entry(service.as_str()).or_default().push(d);
            }
            if left_out > 0 {
                tracing::info!(
                    deltas = left_out,
                    "catalog store: summaries another control plane applied first were left out"
                );
            }
            let mut written = Vec::new();
            for (service, ds) in &by_service {
                let combined;
                let d: &Delta = match ds.as_slice() {
                    [one] => one,
                    many => {
                        let mut add = ServiceSummary::default();
                        for d in many {
                            add.merge_within(&d.add, &caps);
                        }
                        combined = Delta {
                            add,
                            first: many.iter().map(|d| d.first).min().unwrap_or(0),
                            last: many.iter().map(|d| d.last).max().unwrap_or(0),
                        };
                        &combined
                    }
                };
                let service: &str = service;
                let seen: Option<(i64, i64)> = tx
                    .query_row(
                        "SELECT first_seen, last_seen FROM summaries WHERE service = ?1 AND signal = ?2",
                        params![service, ALL_SIGNALS],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let (first, last) = match seen {
                    Some((f, l)) => (f, l.max(d.last)),
                    None => (d.first, d.last),
                };
                let ready = if fresh && seen.is_some() && ds.len() == 1 {
                    merged.remove(service)
                } else {
                    None
                };
                let (summary, body) = match (ready, seen) {
                    (Some(m), _) => m,
                    (None, Some(_)) => {
                        let old: String = tx.query_row(
                            "SELECT body FROM summaries WHERE service = ?1 AND signal = ?2",
                            params![service, ALL_SIGNALS],
                            |r| r.get(0),
                        )?;
                        merge_service(&decode_stored(service, &old, &cfg), &d.add, &cfg)?
                    }
                    (None, None) => merge_service(&ServiceSummary::default(), &d.add, &cfg)?,
                };
                tx.execute(
                    "INSERT INTO summaries (service, signal, body, first_seen, last_seen)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (service, signal) DO UPDATE SET body = ?3, last_seen = MAX(summaries.last_seen, ?5)",
                    params![service, ALL_SIGNALS, body, first, last],
                )?;
                written.push((service.to_string(), summary, first, last));
            }
            for (edge, service) in &pairs {
                tx.execute(
                    "INSERT OR IGNORE INTO edge_services (edge, service) VALUES (?1, ?2)",
                    params![edge, service],
                )?;
            }
            let now = crate::store::now_secs();
            for ((edge, stream), n) in &streams {
                tx.execute(
                    "INSERT INTO ingest_streams (edge, stream, seq, at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (edge, stream) DO UPDATE SET seq = MAX(ingest_streams.seq, ?3), at = ?4",
                    params![edge, stream, *n as i64, now],
                )?;
            }
            for (id, at) in &touches {
                tx.execute(
                    "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
                    params![id, at],
                )?;
            }
            for p in syncs.values() {
                let statuses: Vec<(String, i64, i64, Vec<String>)> = p
                    .statuses
                    .iter()
                    .map(|(id, (h, m, e))| (id.clone(), *h, *m, e.clone()))
                    .collect();
                crate::store::record_sync_in(&tx, &p.info, &statuses)?;
            }
            tx.commit()?;
            Ok((dv, written, held))
        })();
        match result {
            Ok((dv, written, held)) => {
                if !held.is_empty() {
                    let mut s = lock(&self.fast.staged);
                    for (k, n) in held {
                        let v = s.streams.entry(k).or_insert(0);
                        *v = (*v).max(n);
                    }
                }
                let mut d = lock(&self.fast.decoded);
                if d.data_version == Some(dv) {
                    for (service, summary, first, last) in written {
                        d.rows.insert(service, (Arc::new(summary), first, last));
                    }
                } else {
                    *d = Decoded::default();
                }
                drop(d);
                self.fast.bump();
                Ok(true)
            }
            Err(e) => {
                // Kept for the next attempt.
                let mut s = lock(&self.fast.staged);
                for (key, d) in deltas {
                    match s.deltas.get_mut(&key) {
                        Some(newer) => {
                            let mut older = d.add;
                            older.merge_within(&newer.add, &caps);
                            newer.add = older;
                            newer.first = newer.first.min(d.first);
                            newer.last = newer.last.max(d.last);
                        }
                        None => {
                            s.deltas.insert(key, d);
                        }
                    }
                }
                s.new_pairs.extend(pairs);
                for (k, _) in streams {
                    s.dirty_streams.insert(k);
                }
                drop(s);
                {
                    let mut t = lock(&self.fast.touches);
                    for (id, at) in touches {
                        let v = t.entry(id).or_insert(at);
                        *v = (*v).max(at);
                    }
                }
                let mut q = lock(&self.fast.syncs);
                for (k, p) in syncs {
                    match q.get_mut(&k) {
                        Some(newer) => {
                            for (id, (h, m, _)) in p.statuses {
                                let s = newer.statuses.entry(id).or_insert((0, 0, Vec::new()));
                                s.0 = s.0.saturating_add(h);
                                s.1 = s.1.saturating_add(m);
                            }
                        }
                        None => {
                            q.insert(k, p);
                        }
                    }
                }
                Err(e)
            }
        }
    }
}
