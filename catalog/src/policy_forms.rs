//! Each policy is read once, when it is written: the store keeps the form it is served in
//! (its canonical form, see weir-policy-contract's `canonical`) and that form's hash in the
//! `policies` columns `canonical` and `hash`. Syncs and the policies page use the stored
//! forms; policy documents are not read again. Rows written by a build that did not keep
//! the form get it when the store is opened.

use crate::db::{params, Connection};

use crate::CatalogError;

/// The form a policy is served in, read once when it is written: its canonical form (with
/// the shadow label when `shadow`) and that form's hash. A document that does not read is
/// stored without a form (it is not served) and with an empty hash, so it is not read again.
pub(crate) fn served_form(
    id: &str,
    body: &serde_json::Value,
    shadow: bool,
) -> (Option<Vec<u8>>, String) {
    match weir_policy_contract::canonical::Canonical::read(body, shadow) {
        Ok(c) => (Some(c.bytes), c.hash),
        Err(errors) => {
            tracing::warn!(policy = id, ?errors, "policy does not read; not served");
            (None, String::new())
        }
    }
}

/// Computes the served form of policies stored by a build that did not keep it (their
/// `hash` is NULL); run when the store is opened.
pub(crate) fn backfill(conn: &Connection) -> Result<(), CatalogError> {
    let rows: Vec<(String, String, bool)> = {
        let mut st = conn.prepare("SELECT id, body, shadow FROM policies WHERE hash IS NULL")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (id, body, shadow) in rows {
        let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
        let (canonical, hash) = served_form(&id, &body, shadow);
        conn.execute(
            "UPDATE policies SET canonical = ?2, hash = ?3 WHERE id = ?1",
            params![id, canonical, hash],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, StoredPolicy};

    fn policy(id: &str) -> StoredPolicy {
        StoredPolicy {
            id: id.into(),
            name: "drop debug".into(),
            body: serde_json::json!({"id": id, "name": "drop debug", "log": {"match": [], "keep": "none"}}),
            enabled: true,
            shadow: false,
            origin: "user".into(),
            created_at: 10,
            modified_at: 10,
        }
    }

    #[test]
    fn policies_are_read_once_when_written_and_older_rows_when_opened() {
        use weir_policy_contract::canonical::{policies_hash, set_hash, Canonical};
        use weir_policy_contract::SHADOW_LABEL;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let mut shadowed = policy("p2");
        shadowed.shadow = true;
        let mut unreadable = policy("p3");
        unreadable.body = serde_json::json!({"id": "p3", "name": "no target"});
        let mut disabled = policy("p4");
        disabled.enabled = false;
        let written = {
            let s = Store::open(&path).unwrap();
            for p in [policy("p1"), shadowed, unreadable, disabled] {
                s.put_policy(&p, "t", "policy.create").unwrap();
            }
            let forms = s.served_forms().unwrap();
            // Served: the enabled policies that read, by id; the shadow one labelled.
            let ids: Vec<&str> = forms.iter().map(|(id, _)| id.as_str()).collect();
            assert_eq!(ids, ["p1", "p2"]);
            let decoded: Vec<_> = forms
                .iter()
                .map(|(_, b)| Canonical::decode(b).unwrap())
                .collect();
            assert!(!decoded[0].labels.iter().any(|l| l.key == SHADOW_LABEL));
            assert!(decoded[1].labels.iter().any(|l| l.key == SHADOW_LABEL));
            assert_eq!(
                set_hash(forms.iter().map(|(_, b)| b.as_slice())),
                policies_hash(&decoded)
            );
            // What an older build left: the table without the two columns.
            s.conn()
                .execute_batch(
                    "ALTER TABLE policies DROP COLUMN canonical;
                     ALTER TABLE policies DROP COLUMN hash;",
                )
                .unwrap();
            forms
        };
        let s = Store::open(&path).unwrap();
        assert_eq!(s.served_forms().unwrap(), written);
        let hashes: Vec<(String, String)> = {
            let conn = s.conn();
            let mut st = conn
                .prepare("SELECT id, hash FROM policies ORDER BY id")
                .unwrap();
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        };
        let expected = |id: &str| Canonical::read(&policy(id).body, false).unwrap().hash;
        assert_eq!(hashes[0], ("p1".to_string(), expected("p1")));
        assert_eq!(hashes[2], ("p3".to_string(), String::new()));
        assert_eq!(hashes[3], ("p4".to_string(), expected("p4")));
    }
}
