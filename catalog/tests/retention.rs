//! Retention of every table, with the clock moved forward: each table loses its rows when
//! (and only when) they pass that table's age, live tokens are never removed, `0s` keeps
//! forever, and removed rows leave nothing in the (decrypted) files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use weir_catalog::at_rest::{decrypt_file_pages, store_files};
use weir_catalog::auth::{create_token, create_token_with, Role};
use weir_catalog::retention::{Retention, RetentionPerTable};
use weir_catalog::store::{now_secs, EdgeInfo, Store};

const DAY: i64 = 24 * 3600;

fn counts(s: &Store) -> [usize; 6] {
    [
        s.summaries().unwrap().len(),
        s.edges().unwrap().len(),
        s.policy_statuses().unwrap().len(),
        s.dismissed().unwrap().len(),
        s.tokens().unwrap().len(),
        s.audit_log(0, i64::MAX).unwrap().len(),
    ]
}

fn in_files(s: &Store, needle: &str) -> bool {
    store_files(s.path())
        .iter()
        .filter(|f| f.exists() && !f.to_string_lossy().ends_with("-shm"))
        .any(|f| {
            decrypt_file_pages(f, s.key())
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        })
}

fn filled() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("c.db")).unwrap();
    let now = now_secs();
    s.merge_summaries(
        "logs",
        now,
        ["retained-svc"],
        Some(("edge-a", 100)),
        100,
        |_, _| Ok("{}".into()),
    )
    .unwrap();
    s.record_sync(
        &EdgeInfo {
            instance_id: "edge-a-1".into(),
            service_name: "edge".into(),
            last_sync: now,
            last_hash: "h".into(),
        },
        &[("p1".into(), 1, 0, vec![])],
    )
    .unwrap();
    s.dismiss("finding-1", "cli").unwrap();
    // A token that never expires, and one that expires in 20 days.
    create_token_with(&s, Role::Viewer, "live-token", None, None, "cli").unwrap();
    create_token_with(
        &s,
        Role::Viewer,
        "short-token",
        None,
        Some(now + 20 * DAY),
        "cli",
    )
    .unwrap();
    let (_, revoked) = create_token(&s, Role::Viewer, "GrebeRevokedToken", "cli").unwrap();
    s.revoke_token(&revoked.id, "cli").unwrap();
    s.create_user("kept-user", Role::Viewer, "cli").unwrap();
    s.create_user("disabled-user", Role::Viewer, "cli").unwrap();
    s.disable_user("disabled-user", "cli").unwrap();
    (dir, s)
}

#[test]
fn every_table_keeps_its_rows_exactly_as_long_as_configured() {
    let (_d, s) = filled();
    let now = now_secs();
    let r = Retention::default();
    let audit0 = s.audit_log(0, i64::MAX).unwrap().len();
    assert_eq!(counts(&s), [1, 1, 1, 1, 3, audit0]);
    assert!(audit0 >= 4, "{audit0}");

    // 10 days on: everything is younger than its retention.
    let p = s.apply_retention(now + 10 * DAY, &r).unwrap();
    assert_eq!(p.total(), 0, "{p:?}");
    assert_eq!(counts(&s), [1, 1, 1, 1, 3, audit0]);

    // 31 days: summaries (30 days), their edge records, edges and policy status go.
    let p = s.apply_retention(now + 31 * DAY, &r).unwrap();
    assert_eq!(
        (p.summaries, p.edge_services, p.edges, p.policy_status),
        (1, 1, 1, 1),
        "{p:?}"
    );
    assert_eq!((p.dismissed_findings, p.revoked_tokens, p.audit), (0, 0, 0));
    assert_eq!(counts(&s), [0, 0, 0, 1, 3, audit0]);

    // 91 days: dismissals, the revoked token and the disabled user go; the live token
    // and the active user stay.
    assert_eq!(s.users().unwrap().len(), 2);
    let p = s.apply_retention(now + 91 * DAY, &r).unwrap();
    assert_eq!(
        (
            p.dismissed_findings,
            p.revoked_tokens,
            p.disabled_users,
            p.audit
        ),
        (1, 1, 1, 0)
    );
    // The expired token goes 90 days after its expiry.
    let p = s.apply_retention(now + 111 * DAY, &r).unwrap();
    assert_eq!((p.revoked_tokens, p.total()), (1, 1), "{p:?}");
    let users = s.users().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].name, "kept-user");
    let tokens = s.tokens().unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].name, "live-token");
    // Its name is still in the audit record of its creation, kept longer.
    assert!(
        in_files(&s, "GrebeRevokedToken"),
        "the scan finds what is there"
    );

    // 366 days: the audit records go but the newest (the chain goes on from it), one
    // record says so; the chain still verifies; the live token still stays.
    let p = s.apply_retention(now + 366 * DAY, &r).unwrap();
    assert_eq!(p.audit, audit0 - 1);
    let log = s.audit_log(0, i64::MAX).unwrap();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[1].action, "audit.prune");
    assert_eq!(log[1].after.as_ref().unwrap()["deleted"], audit0 - 1);
    let verified = s.verify_audit().unwrap();
    assert!(verified.is_ok(), "{verified:?}");
    assert_eq!(s.tokens().unwrap().len(), 1);
    assert!(
        !in_files(&s, "GrebeRevokedToken"),
        "revoked token left in the files"
    );
    assert!(in_files(&s, "live-token"), "the scan finds what is there");
    // The audit log is append-only again afterwards.
    s.audit("cli", "x", "y", None, None).unwrap();
    let e = s
        .apply_retention(now + 300 * DAY, &Retention::default())
        .unwrap();
    assert_eq!(e.audit, 0, "the new records are not old");
    assert_eq!(s.audit_log(0, i64::MAX).unwrap().len(), 3);
}

#[test]
fn zero_keeps_forever_and_each_table_has_its_own_age() {
    let (_d, s) = filled();
    let now = now_secs();
    let forever = Retention {
        summaries: Duration::ZERO,
        tables: RetentionPerTable {
            edges: Duration::ZERO,
            policy_status: Duration::ZERO,
            dismissed_findings: Duration::ZERO,
            revoked_tokens: Duration::ZERO,
            disabled_users: Duration::ZERO,
            audit: Duration::ZERO,
        },
    };
    let before = counts(&s);
    assert_eq!(
        s.apply_retention(now + 5000 * DAY, &forever)
            .unwrap()
            .total(),
        0
    );
    assert_eq!(counts(&s), before);
    // Only the audit is short: only the audit goes.
    let mut only_audit = forever;
    only_audit.tables.audit = Duration::from_secs(60);
    let p = s.apply_retention(now + 120, &only_audit).unwrap();
    assert_eq!(p.audit, before[5] - 1);
    assert_eq!(p.total(), p.audit);
    // Only policy status.
    let mut only_status = forever;
    only_status.tables.policy_status = Duration::from_secs(60);
    let p = s.apply_retention(now + 120, &only_status).unwrap();
    assert_eq!((p.policy_status, p.total()), (1, 1));
    assert_eq!(s.edges().unwrap().len(), 1);
}
