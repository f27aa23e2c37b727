//! The catalog's rows: metadata summaries per (service, signal), merged as edges and the
//! summariser send them, pruned when unseen, deleted per service, and the erasure that
//! leaves no trace of what was deleted (`scrub`).

use crate::db::{params, Connection, OptionalExtension};

use super::{scrub, Store, SummaryRow};
use crate::CatalogError;

impl Store {
    // ---- catalog summaries ----

    /// Merges a summary for (service, signal): `merge(old body)` returns the new body.
    pub fn merge_summary(
        &self,
        service: &str,
        signal: &str,
        seen_at: i64,
        merge: impl FnOnce(Option<&str>) -> Result<String, CatalogError>,
    ) -> Result<(), CatalogError> {
        self.exclusive(|conn| Store::merge_summary_in(conn, service, signal, seen_at, merge))?
    }

    fn merge_summary_in(
        conn: &Connection,
        service: &str,
        signal: &str,
        seen_at: i64,
        merge: impl FnOnce(Option<&str>) -> Result<String, CatalogError>,
    ) -> Result<(), CatalogError> {
        let tx = conn.unchecked_transaction()?;
        let old: Option<String> = tx
            .query_row(
                "SELECT body FROM summaries WHERE service = ?1 AND signal = ?2",
                params![service, signal],
                |r| r.get(0),
            )
            .optional()?;
        let body = merge(old.as_deref())?;
        tx.execute(
            "INSERT INTO summaries (service, signal, body, first_seen, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (service, signal) DO UPDATE SET body = ?3, last_seen = MAX(summaries.last_seen, ?4)",
            params![service, signal, body, seen_at],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Merges several services' summaries in one transaction: all are stored or none.
    /// `merge(service, old body)` returns the new body. With `edge`, each service is
    /// recorded as reported by that edge, and the request fails (nothing stored) when the
    /// edge would then report more than `max_edge_services` services, or when the
    /// catalog would hold more than `max_services` services.
    pub fn merge_summaries<'a>(
        &self,
        signal: &str,
        seen_at: i64,
        services: impl IntoIterator<Item = &'a str>,
        edge: Option<(&str, usize)>,
        max_services: usize,
        merge: impl FnMut(&str, Option<&str>) -> Result<String, CatalogError>,
    ) -> Result<(), CatalogError> {
        self.exclusive(|conn| {
            Store::merge_summaries_in(conn, signal, seen_at, services, edge, max_services, merge)
        })?
    }

    fn merge_summaries_in<'a>(
        conn: &Connection,
        signal: &str,
        seen_at: i64,
        services: impl IntoIterator<Item = &'a str>,
        edge: Option<(&str, usize)>,
        max_services: usize,
        mut merge: impl FnMut(&str, Option<&str>) -> Result<String, CatalogError>,
    ) -> Result<(), CatalogError> {
        let tx = conn.unchecked_transaction()?;
        // Counted once, then kept up to date as services are added.
        let mut in_catalog: i64 =
            tx.query_row("SELECT COUNT(DISTINCT service) FROM summaries", [], |r| {
                r.get(0)
            })?;
        let mut of_edge: i64 = match edge {
            Some((edge, _)) => tx.query_row(
                "SELECT COUNT(*) FROM edge_services WHERE edge = ?1",
                params![edge],
                |r| r.get(0),
            )?,
            None => 0,
        };
        for service in services {
            if let Some((edge, max)) = edge {
                let added = tx.execute(
                    "INSERT OR IGNORE INTO edge_services (edge, service) VALUES (?1, ?2)",
                    params![edge, service],
                )?;
                if added > 0 {
                    of_edge += 1;
                    let n = of_edge;
                    if n as u64 > max as u64 {
                        return Err(CatalogError::Limit(format!(
                            "services: edge {edge:?} would report {n} services, the per-edge limit is {max}"
                        )));
                    }
                }
            }
            let old: Option<String> = tx
                .query_row(
                    "SELECT body FROM summaries WHERE service = ?1 AND signal = ?2",
                    params![service, signal],
                    |r| r.get(0),
                )
                .optional()?;
            if old.is_none() {
                let n = in_catalog;
                in_catalog += 1;
                if n as u64 >= max_services as u64 {
                    return Err(CatalogError::Limit(format!(
                        "services: the catalog holds {n} services, the limit is {max_services}"
                    )));
                }
            }
            let body = merge(service, old.as_deref())?;
            tx.execute(
                "INSERT INTO summaries (service, signal, body, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (service, signal) DO UPDATE SET body = ?3, last_seen = MAX(summaries.last_seen, ?4)",
                params![service, signal, body, seen_at],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// All summaries as (service, signal, body, first_seen, last_seen), after writing what
    /// is staged.
    pub fn summaries(&self) -> Result<Vec<SummaryRow>, CatalogError> {
        self.persist()?;
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT service, signal, body, first_seen, last_seen FROM summaries ORDER BY service, signal",
        )?;
        let rows = st.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes every summary of a service, and the job of that name from Prometheus
    /// snapshots, leaving no trace of it in the files (see [`Store::scrub`]); returns how
    /// many rows went or changed.
    pub fn delete_service(&self, service: &str) -> Result<usize, CatalogError> {
        self.exclusive(|conn| Store::delete_service_in(conn, service))?
    }

    fn delete_service_in(conn: &Connection, service: &str) -> Result<usize, CatalogError> {
        conn.execute(
            "DELETE FROM edge_services WHERE service = ?1",
            params![service],
        )?;
        let mut n = conn.execute("DELETE FROM summaries WHERE service = ?1", params![service])?;
        // The job of that name in Prometheus snapshots (the service a Weir edge scraping it
        // reports).
        let rows: Vec<(String, String)> = {
            let mut st = conn.prepare("SELECT source, body FROM prometheus_sources")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (source, body) in rows {
            let mut snap: crate::prometheus::Snapshot = serde_json::from_str(&body)?;
            if snap.remove_job(service) {
                conn.execute(
                    "UPDATE prometheus_sources SET body = ?2 WHERE source = ?1",
                    params![source, serde_json::to_string(&snap)?],
                )?;
                n += 1;
            }
        }
        if n > 0 {
            scrub(conn)?;
        }
        Ok(n)
    }

    /// Deletes summaries not seen since `cutoff` (unix seconds), leaving no trace of them in
    /// the files; returns how many went.
    pub fn prune_unseen_since(&self, cutoff: i64) -> Result<usize, CatalogError> {
        self.exclusive(|conn| Store::prune_unseen_since_in(conn, cutoff))?
    }

    fn prune_unseen_since_in(conn: &Connection, cutoff: i64) -> Result<usize, CatalogError> {
        let n = conn.execute(
            "DELETE FROM summaries WHERE last_seen < ?1",
            params![cutoff],
        )?;
        conn.execute(
            "DELETE FROM edge_services WHERE service NOT IN (SELECT service FROM summaries)",
            [],
        )?;
        if n > 0 {
            scrub(conn)?;
        }
        Ok(n)
    }

    /// Rewrites the database so nothing deleted is left in any of its files: VACUUM (drops
    /// free pages, which secure_delete has zeroed already, and any written before it was
    /// on), then a TRUNCATE checkpoint, which copies the WAL into the database and empties
    /// the -wal file (it held older images of the pages). The -shm file is an index of the
    /// WAL and holds no content.
    pub fn scrub(&self) -> Result<(), CatalogError> {
        scrub(&self.conn())
    }
}
