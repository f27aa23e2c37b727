//! API tokens: stored by the hash of their secret, listed, touched on use and revoked.

use crate::db::{params, OptionalExtension};

use super::audit::insert_audit;
use super::{now_secs, to_json, Store, TokenInfo};
use crate::CatalogError;

impl Store {
    // ---- tokens ----

    /// Stores a token's hash (audited).
    pub fn put_token(&self, t: &TokenInfo, hash: &[u8], actor: &str) -> Result<(), CatalogError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO tokens (id, hash, role, name, created_at, edge, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![t.id, hash, t.role, t.name, t.created_at, t.edge, t.expires_at],
        )?;
        insert_audit(&tx, actor, "token.create", &t.id, None, Some(to_json(t)?))?;
        tx.commit()?;
        self.fast.forget_tokens();
        Ok(())
    }

    /// The live (not revoked) token with this hash.
    pub fn token_by_hash(&self, hash: &[u8]) -> Result<Option<(TokenInfo, Vec<u8>)>, CatalogError> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT id, role, name, created_at, revoked_at, hash, edge, expires_at, last_used_at FROM tokens WHERE hash = ?1 AND revoked_at IS NULL",
                params![hash],
                |r| {
                    Ok((
                        TokenInfo {
                            id: r.get(0)?,
                            role: r.get(1)?,
                            name: r.get(2)?,
                            created_at: r.get(3)?,
                            revoked_at: r.get(4)?,
                            edge: r.get(6)?,
                            expires_at: r.get(7)?,
                            last_used_at: r.get(8)?,
                        },
                        r.get(5)?,
                    ))
                },
            )
            .optional()?)
    }

    /// All tokens (without hashes).
    pub fn tokens(&self) -> Result<Vec<TokenInfo>, CatalogError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, role, name, created_at, revoked_at, edge, expires_at, last_used_at FROM tokens ORDER BY created_at, id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(TokenInfo {
                id: r.get(0)?,
                role: r.get(1)?,
                name: r.get(2)?,
                created_at: r.get(3)?,
                revoked_at: r.get(4)?,
                edge: r.get(5)?,
                expires_at: r.get(6)?,
                last_used_at: r.get(7)?,
            })
        })?;
        let mut out: Vec<TokenInfo> = rows.collect::<Result<_, _>>()?;
        drop(st);
        drop(conn);
        // Uses buffered for the next persist count as recorded.
        let pending = self.pending_touches();
        if !pending.is_empty() {
            for t in &mut out {
                if let Some(at) = pending.get(&t.id) {
                    t.last_used_at = Some(t.last_used_at.map_or(*at, |u| u.max(*at)));
                }
            }
        }
        Ok(out)
    }

    /// Records that token `id` was used at `now` (written at most once a minute per token).
    pub fn touch_token(&self, id: &str, now: i64) -> Result<(), CatalogError> {
        self.conn().execute(
            "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= CAST(?2 AS BIGINT) - 60)",
            params![id, now],
        )?;
        Ok(())
    }

    /// Revokes a token (audited); false when no live token has this id.
    pub fn revoke_token(&self, id: &str, actor: &str) -> Result<bool, CatalogError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now_secs()],
        )?;
        if n > 0 {
            insert_audit(&tx, actor, "token.revoke", id, None, None)?;
        }
        tx.commit()?;
        self.fast.forget_tokens();
        Ok(n > 0)
    }
}
