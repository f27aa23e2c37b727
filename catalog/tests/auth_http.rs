//! Authentication over real HTTP against the `control_plane` extension on loopback:
//! guessed tokens are locked out per client address (429 + Retry-After) and per token id,
//! a valid client from another address is unaffected, failures are counted in the
//! metrics and written to the audit log with the client address; expired tokens are
//! refused naming the expiry; the last use of a token is recorded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{free_port, http_from};
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::json;
use weir_api::{BuildContext, Component, ComponentId, ExtensionFactory, Telemetry};
use weir_catalog::auth::{create_token_for, create_token_with, Role};
use weir_catalog::component::ControlPlaneFactory;
use weir_catalog::store::{now_secs, Store};

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

struct Cp {
    addr: SocketAddr,
    component: Arc<dyn Component>,
    telemetry: Telemetry,
}

async fn start(db: &std::path::Path, failed_auth: serde_json::Value) -> Cp {
    let http = free_port();
    let config = json!({
        "endpoint": format!("127.0.0.1:{http}"),
        "storage": db.to_str().unwrap(),
        "failed_auth": failed_auth,
    });
    let parsed = ControlPlaneFactory
        .parse(&config, "extensions.control_plane")
        .unwrap();
    let ctx = BuildContext::for_component(ComponentId::parse("control_plane").unwrap());
    let telemetry = ctx.telemetry.clone();
    let component = parsed.build(&ctx).unwrap();
    component.start().await.unwrap();
    Cp {
        addr: format!("127.0.0.1:{http}").parse().unwrap(),
        component,
        telemetry,
    }
}

fn guess(i: usize) -> String {
    format!("weir_{:012x}_guessedsecretguessedsecretguessedsecret{i}", i)
}

#[tokio::test]
async fn guessed_tokens_are_locked_out_per_client_and_per_token_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.db");
    let (admin, viewer, expired, viewer_id) = {
        let store = Store::open(&db).unwrap();
        let admin = create_token_for(&store, Role::Admin, "a", None, "test").unwrap();
        let viewer = create_token_for(&store, Role::Viewer, "v", None, "test").unwrap();
        let expired = create_token_with(
            &store,
            Role::Editor,
            "old",
            None,
            Some(now_secs() - 5),
            "test",
        )
        .unwrap();
        (admin.0, viewer.0, expired.0, viewer.1.id)
    };
    let cp = start(&db, json!({"max_failures": 5, "lockout": "30s"})).await;

    // 200 guesses from 127.0.0.1: the first 5 get 401, the rest 429 with Retry-After.
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for i in 0..200 {
        let (st, head, _) = http_from(
            "127.0.0.1",
            cp.addr,
            "GET",
            "/api/v1/services",
            &[("authorization", &bearer(&guess(i)))],
            "",
        )
        .await;
        if st == 429 && retry_after.is_none() {
            retry_after = head
                .lines()
                .find_map(|l| l.strip_prefix("retry-after: "))
                .map(|v| v.trim().parse::<u64>().unwrap());
        }
        statuses.push(st);
    }
    assert!(statuses[..5].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let ra = retry_after.expect("429 carries Retry-After");
    assert!((1..=30).contains(&ra), "Retry-After {ra}");
    // Even a valid token is refused from the locked-out address ...
    let (st, _, body) = http_from(
        "127.0.0.1",
        cp.addr,
        "GET",
        "/api/v1/services",
        &[("authorization", &bearer(&admin))],
        "",
    )
    .await;
    assert_eq!(st, 429, "{body}");
    assert!(body.contains("too many failed authentications"), "{body}");
    // ... and served from another one.
    let (st, _, body) = http_from(
        "127.0.0.2",
        cp.addr,
        "GET",
        "/api/v1/services",
        &[("authorization", &bearer(&admin))],
        "",
    )
    .await;
    assert_eq!(st, 200, "{body}");

    // Per token id: wrong secrets for the viewer token's id from 5 addresses lock that id
    // out everywhere, while other tokens still work from those addresses.
    let wrong = format!("weir_{viewer_id}_notthesecretnotthesecretnotthesecret");
    for i in 10..15 {
        let (st, _, _) = http_from(
            &format!("127.0.0.{i}"),
            cp.addr,
            "GET",
            "/api/v1/overview",
            &[("authorization", &bearer(&wrong))],
            "",
        )
        .await;
        assert_eq!(st, 401);
    }
    let (st, _, body) = http_from(
        "127.0.0.20",
        cp.addr,
        "GET",
        "/api/v1/overview",
        &[("authorization", &bearer(&viewer))],
        "",
    )
    .await;
    assert_eq!(st, 429, "{body}");
    assert!(body.contains("account"), "{body}");
    let (st, _, _) = http_from(
        "127.0.0.10",
        cp.addr,
        "GET",
        "/api/v1/overview",
        &[("authorization", &bearer(&admin))],
        "",
    )
    .await;
    assert_eq!(st, 200);

    // An expired token: 401 naming the expiry, nothing of the token echoed.
    let (st, head, body) = http_from(
        "127.0.0.30",
        cp.addr,
        "GET",
        "/api/v1/services",
        &[("authorization", &bearer(&expired))],
        "",
    )
    .await;
    assert_eq!(st, 401, "{body}");
    assert!(head.contains("www-authenticate: Bearer"), "{head}");
    assert!(body.contains("token expired"), "{body}");
    // The whole secret (`weir_<id>_<secret>`; the secret's base64 may hold `_` itself).
    let secret = expired.splitn(3, '_').nth(2).unwrap();
    assert!(secret.len() >= 40, "{secret}");
    assert!(!body.contains(secret), "{body}");

    // Metrics.
    let m = cp.telemetry.encode();
    assert!(
        m.contains("weir_catalog_auth_failures_total{reason=\"invalid_token\"} 10"),
        "{m}"
    );
    assert!(
        m.contains("weir_catalog_auth_failures_total{reason=\"expired_token\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("weir_catalog_auth_refused_total{scope=\"client\"} 196"),
        "{m}"
    );
    assert!(
        m.contains("weir_catalog_auth_refused_total{scope=\"account\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("weir_catalog_auth_lockouts_total{scope=\"client\"} 1"),
        "{m}"
    );
    cp.component.shutdown().await;

    // Audit: each failure with its client address; last use recorded for used tokens.
    let store = Store::open(&db).unwrap();
    let log = store.audit_log(0, 10_000).unwrap();
    let failures: Vec<_> = log.iter().filter(|e| e.action == "auth.failure").collect();
    assert_eq!(failures.len(), 11, "{failures:?}");
    assert_eq!(failures[0].client.as_deref(), Some("127.0.0.1"));
    assert_eq!(failures[0].target, "invalid_token");
    assert_eq!(failures[0].actor, format!("token:{:012x}", 0));
    assert_eq!(failures[5].actor, format!("token:{viewer_id}"));
    assert_eq!(failures[5].client.as_deref(), Some("127.0.0.10"));
    assert_eq!(failures[10].target, "expired_token");
    let tokens = store.tokens().unwrap();
    let used = |role: &str| tokens.iter().find(|t| t.role == role).unwrap().last_used_at;
    assert!(used("admin").is_some_and(|t| t >= now_secs() - 60));
    assert_eq!(used("viewer"), None, "the viewer token was never accepted");
}

fn cookie_of(head: &str) -> String {
    let line = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("set-cookie");
    line.split(';').next().unwrap().trim().to_string()
}

#[tokio::test]
async fn people_enrol_and_sign_in_with_password_and_totp_into_a_cookie_session() {
    use weir_catalog::users::{base32_decode, totp};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.db");
    let (enrol, edge) = {
        let store = Store::open(&db).unwrap();
        let edge = create_token_for(&store, Role::Edge, "e", Some("edge-a"), "test").unwrap();
        (
            store.create_user("ana", Role::Editor, "cli").unwrap(),
            edge.0,
        )
    };
    let cp = start(&db, json!({"max_failures": 5, "lockout": "30s"})).await;
    let post = |from: &'static str, path: &'static str, body: serde_json::Value| {
        let addr = cp.addr;
        async move {
            http_from(
                from,
                addr,
                "POST",
                path,
                &[("content-type", "application/json")],
                &body.to_string(),
            )
            .await
        }
    };

    // Enrolment: the secret, then password + a code from the new TOTP secret.
    let (st, _, body) = post(
        "127.0.0.1",
        "/api/v1/enrol/start",
        json!({"user": "ana", "secret": "weir_enrol_guess"}),
    )
    .await;
    assert_eq!(st, 401, "{body}");
    let (st, head, body) = post(
        "127.0.0.1",
        "/api/v1/enrol/start",
        json!({"user": "ana", "secret": enrol}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let secret = base32_decode(v["totp_secret"].as_str().unwrap()).unwrap();
    assert!(v["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/Weir:ana?secret="));
    let now = now_secs() as u64;
    let code = |t: u64| format!("{:06}", totp(&secret, t));
    let (st, _, body) = post(
        "127.0.0.1",
        "/api/v1/enrol/finish",
        json!({"user": "ana", "secret": enrol, "password": "correct horse battery", "code": code(now)}),
    )
    .await;
    assert_eq!(st, 204, "{body}");

    // Sign-in needs both factors; one message for either wrong.
    let (st, _, wrong_pw) = post(
        "127.0.0.1",
        "/api/v1/sign-in",
        json!({"user": "ana", "password": "not the password", "code": code(now + 30)}),
    )
    .await;
    assert_eq!(st, 401);
    let (st, _, wrong_code) = post(
        "127.0.0.1",
        "/api/v1/sign-in",
        json!({"user": "ana", "password": "correct horse battery", "code": "000000"}),
    )
    .await;
    assert_eq!(st, 401);
    assert_eq!(wrong_pw, wrong_code);
    let (st, head, body) = post(
        "127.0.0.1",
        "/api/v1/sign-in",
        json!({"user": "ana", "password": "correct horse battery", "code": code(now + 30)}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let set = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap()
        .to_lowercase();
    for attr in ["httponly", "samesite=strict", "max-age=3600", "path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("secure"), "plain HTTP: no Secure flag: {set}");
    let session = cookie_of(&head);

    // The cookie is a credential with the user's role, enforced by the server.
    let get = |path: &'static str, cookie: String| {
        let addr = cp.addr;
        async move { http_from("127.0.0.1", addr, "GET", path, &[("cookie", &cookie)], "").await }
    };
    let (st, _, body) = get("/api/v1/whoami", session.clone()).await;
    assert_eq!(st, 200, "{body}");
    let who: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(who, json!({"user": "ana", "role": "editor"}));
    assert_eq!(get("/api/v1/services", session.clone()).await.0, 200);
    assert_eq!(get("/api/v1/tokens", session.clone()).await.0, 403);
    let (st, _, body) = get("/api/v1/services", "weir_session=weir_s_forged".into()).await;
    assert_eq!(st, 401);
    assert!(body.contains("sign in again"), "{body}");

    // Guessing ana's password from many addresses locks the account: 429 even for the
    // right password and a fresh code, from an address that never failed.
    for i in 40..45 {
        let (st, _, _) = http_from(
            &format!("127.0.0.{i}"),
            cp.addr,
            "POST",
            "/api/v1/sign-in",
            &[("content-type", "application/json")],
            &json!({"user": "ana", "password": format!("guess {i}"), "code": "123456"}).to_string(),
        )
        .await;
        assert_eq!(st, 401);
    }
    let (st, head, body) = post(
        "127.0.0.50",
        "/api/v1/sign-in",
        json!({"user": "ana", "password": "correct horse battery", "code": code(now + 60)}),
    )
    .await;
    assert_eq!(st, 429, "{body}");
    assert!(head.contains("retry-after: "), "{head}");

    // Sign-out ends the session.
    let (st, head, _) = http_from(
        "127.0.0.1",
        cp.addr,
        "POST",
        "/api/v1/sign-out",
        &[("cookie", &session)],
        "",
    )
    .await;
    assert_eq!(st, 204);
    assert!(head.to_lowercase().contains("max-age=0"), "{head}");
    assert_eq!(get("/api/v1/services", session.clone()).await.0, 401);

    // Three syncs of one edge in a minute: one audit record with the count.
    for _ in 0..3 {
        let (st, _, body) = http_from(
            "127.0.0.5",
            cp.addr,
            "POST",
            "/v1/policy/sync",
            &[
                ("authorization", &bearer(&edge)),
                ("content-type", "application/x-protobuf"),
            ],
            "",
        )
        .await;
        assert_eq!(st, 200, "{body}");
    }
    cp.component.shutdown().await;

    let store = Store::open(&db).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let syncs = loop {
        let log = store.audit_log(0, 10_000).unwrap();
        let s: Vec<_> = log
            .into_iter()
            .filter(|e| e.action == "edge.sync")
            .collect();
        if !s.is_empty() || std::time::Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // (A minute boundary between the syncs splits them into two records.)
    let total: u64 = syncs
        .iter()
        .map(|e| e.after.as_ref().unwrap()["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 3, "{syncs:?}");
    assert_eq!(syncs[0].target, "edge-a");
    assert_eq!(syncs[0].client.as_deref(), Some("127.0.0.5"));
    assert!(syncs[0].actor.starts_with("token:"));

    let log = store.audit_log(0, 10_000).unwrap();
    let find = |action: &str, actor: &str| {
        log.iter()
            .filter(|e| e.action == action && e.actor == actor)
            .count()
    };
    assert_eq!(find("user.create", "cli"), 1);
    assert_eq!(find("user.enrol", "user:ana"), 1);
    assert_eq!(find("user.sign_in", "user:ana"), 1);
    // Failures: 2 wrong sign-ins, 5 guesses, 1 enrolment guess.
    assert_eq!(find("auth.failure", "user:ana"), 8);
    let reads: Vec<_> = log
        .iter()
        .filter(|e| e.action == "api.read" && e.actor == "user:ana")
        .collect();
    assert!(
        reads
            .iter()
            .any(|e| e.target == "/api/v1/services" && e.client.as_deref() == Some("127.0.0.1")),
        "{reads:?}"
    );
    assert!(store.verify_audit().unwrap().is_ok());
}
