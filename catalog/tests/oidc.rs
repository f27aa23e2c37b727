//! OpenID Connect sign-in against a real provider on loopback: the maintained npm package
//! `oidc-provider` (tests/oidc/provider.mjs, installed by scripts/test.sh with `npm ci`),
//! configured to require PKCE (S256) of our confidential client. The test plays the
//! browser with a cookie jar over plain HTTP: the control plane's `/auth/oidc/login`, the
//! provider's own login and consent pages, the callback; then uses the session on the API
//! and reads the audit log. Tampered `state` and `nonce`, a replayed callback, an unknown
//! user and a code exchange without the PKCE verifier are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::free_port;
use std::collections::HashMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_api::{BuildContext, Component, ComponentId, ExtensionFactory};
use weir_catalog::auth::Role;
use weir_catalog::component::ControlPlaneFactory;
use weir_catalog::store::Store;

const CLIENT_ID: &str = "weir-cp";
const CLIENT_SECRET: &str = "test-secret with spaces&symbols";

/// The provider process; killed on drop.
struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_provider(redirect: &str, alg: &str) -> Provider {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/oidc");
    assert!(
        dir.join("node_modules/oidc-provider").is_dir(),
        "the test provider is not installed: run `npm ci --prefix tests/oidc` (scripts/test.sh does)"
    );
    let mut child = Command::new("node")
        .arg("provider.mjs")
        .args([redirect, CLIENT_ID, CLIENT_SECRET, alg])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node (Node.js 20 or later) on PATH");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let issuer = loop {
        let line = lines
            .next()
            .expect("provider exited before listening")
            .unwrap();
        if let Some(i) = line.strip_prefix("ISSUER ") {
            break i.to_string();
        }
    };
    // Keep reading its output (it logs its pages), so it never writes to a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Provider { child, issuer }
}

struct Cp {
    addr: SocketAddr,
    component: Arc<dyn Component>,
}

async fn start_cp(db: &Path, port: u16, issuer: &str) -> Cp {
    let config = json!({
        "endpoint": format!("127.0.0.1:{port}"),
        "storage": db.to_str().unwrap(),
        "failed_auth": {"max_failures": 100},
        "oidc": {
            "issuer": issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_url": format!("http://127.0.0.1:{port}/auth/oidc/callback"),
        },
    });
    let parsed = ControlPlaneFactory
        .parse(&config, "extensions.control_plane")
        .unwrap();
    let ctx = BuildContext::for_component(ComponentId::parse("control_plane").unwrap());
    let component = parsed.build(&ctx).unwrap();
    component.start().await.unwrap();
    Cp {
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        component,
    }
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A browser: one cookie jar per host:port, plain HTTP/1.1.
#[derive(Default)]
struct Browser {
    jar: HashMap<String, HashMap<String, String>>,
}

fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    }
}

impl Browser {
    async fn send(&mut self, method: &str, url: &str, extra: &[(&str, &str)], body: &str) -> Resp {
        let (host, path) = split_url(url);
        let mut s = tokio::net::TcpStream::connect(&host)
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\ncontent-length: {}\r\n",
            body.len()
        );
        if let Some(c) = self.jar.get(&host).filter(|c| !c.is_empty()) {
            let v: Vec<String> = c.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req.push_str(&format!("cookie: {}\r\n", v.join("; ")));
        }
        for (k, v) in extra {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out)
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let text = String::from_utf8_lossy(&out).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let chunked = headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
        });
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_string()
        };
        for (k, v) in &headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                let pair = v.split(';').next().unwrap();
                let (name, value) = pair
                    .split_once('=')
                    .unwrap_or_else(|| panic!("a Set-Cookie without a value: {v:?}"));
                let expired = v.to_ascii_lowercase().contains("max-age=0")
                    || v.to_ascii_lowercase().contains("expires=thu, 01 jan 1970");
                let c = self.jar.entry(host.clone()).or_default();
                if expired || value.is_empty() {
                    c.remove(name);
                } else {
                    c.insert(name.to_string(), value.to_string());
                }
            }
        }
        Resp {
            status,
            headers,
            body,
        }
    }

    fn cookie(&self, host: &str, name: &str) -> Option<String> {
        self.jar.get(host).and_then(|c| c.get(name)).cloned()
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http://") {
        location.to_string()
    } else {
        let (host, _) = split_url(base);
        format!("http://{host}{location}")
    }
}

fn form_action(html: &str) -> String {
    let i = html.find("action=\"").expect("a form in the page") + 8;
    let j = html[i..].find('"').unwrap();
    html[i..i + j].replace("&amp;", "&")
}

/// `GET /auth/oidc/login` on the control plane: the provider's authorization URL.
async fn start_login(b: &mut Browser, cp: SocketAddr) -> String {
    let r = b
        .send("GET", &format!("http://{cp}/auth/oidc/login"), &[], "")
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        b.cookie(&cp.to_string(), "weir_oidc_state").is_some(),
        "{:?}",
        r.headers
    );
    r.header("location").unwrap().to_string()
}

/// At the provider: follows redirects, signs in as `login` on its login page, consents,
/// until it redirects to the callback; that callback URL (not followed).
async fn at_provider(b: &mut Browser, auth_url: &str, login: &str, callback: &str) -> String {
    let mut url = auth_url.to_string();
    let mut method = "GET";
    let mut body = String::new();
    for _ in 0..12 {
        let extra: &[(&str, &str)] = if method == "POST" {
            &[("content-type", "application/x-www-form-urlencoded")]
        } else {
            &[]
        };
        let r = b.send(method, &url, extra, &body).await;
        if let Some(loc) = r.header("location") {
            let next = absolute(&url, loc);
            if next.starts_with(callback) {
                return next;
            }
            url = next;
            method = "GET";
            body.clear();
            continue;
        }
        assert_eq!(r.status, 200, "provider page {url}: {}", r.body);
        let action = absolute(&url, &form_action(&r.body));
        body = if r.body.contains("name=\"prompt\" value=\"login\"") {
            format!("prompt=login&login={login}&password=any")
        } else if r.body.contains("name=\"prompt\" value=\"consent\"") {
            "prompt=consent".to_string()
        } else {
            panic!("unexpected provider page {url}: {}", r.body)
        };
        url = action;
        method = "POST";
    }
    panic!("the provider did not redirect to the callback")
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url.split_once('?')?
        .1
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn replace_param(url: &str, name: &str, value: &str) -> String {
    let old = query_param(url, name).unwrap();
    url.replace(&format!("{name}={old}"), &format!("{name}={value}"))
}

struct Setup {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    provider: Provider,
    cp: Cp,
    callback: String,
}

async fn setup(alg: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.db");
    {
        let store = Store::open(&db).unwrap();
        store.create_user("alice", Role::Editor, "test").unwrap();
        store.create_user("bob", Role::Viewer, "test").unwrap();
        store.disable_user("bob", "test").unwrap();
    }
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/auth/oidc/callback");
    let provider = start_provider(&callback, alg);
    let cp = start_cp(&db, port, &provider.issuer).await;
    Setup {
        _dir: dir,
        db,
        provider,
        cp,
        callback,
    }
}

/// Signs `login` in through the provider; the control plane's answer to the callback.
async fn sign_in(s: &Setup, b: &mut Browser, login: &str) -> (Resp, String) {
    let auth = start_login(b, s.cp.addr).await;
    let cb = at_provider(b, &auth, login, &s.callback).await;
    let r = b.send("GET", &cb, &[], "").await;
    (r, cb)
}

#[tokio::test]
async fn oidc_code_flow_with_pkce_signs_in_and_refuses_tampering() {
    let s = setup("RS256").await;
    let cp = s.cp.addr;
    let host = cp.to_string();

    // The authorization request carries PKCE S256, state and nonce.
    let mut b = Browser::default();
    let auth = start_login(&mut b, cp).await;
    assert!(
        auth.starts_with(&format!("{}/auth?", s.provider.issuer)),
        "{auth}"
    );
    assert_eq!(
        query_param(&auth, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(query_param(&auth, "code_challenge").unwrap().len(), 43);
    assert_eq!(
        query_param(&auth, "state"),
        b.cookie(&host, "weir_oidc_state")
    );
    assert!(query_param(&auth, "nonce").is_some());
    let cb = at_provider(&mut b, &auth, "alice", &s.callback).await;
    assert!(query_param(&cb, "code").is_some(), "{cb}");

    // Sign-in: 303 to / with the same session cookie as password + TOTP sign-in.
    let r = b.send("GET", &cb, &[], "").await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/"));
    let set: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect();
    let session = set
        .iter()
        .find(|c| c.starts_with("weir_session="))
        .unwrap_or_else(|| panic!("{set:?}"));
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    assert!(
        b.cookie(&host, "weir_oidc_state").is_none(),
        "state cookie cleared"
    );
    let who = b
        .send("GET", &format!("http://{cp}/api/v1/whoami"), &[], "")
        .await;
    assert_eq!(who.status, 200, "{}", who.body);
    let who: serde_json::Value = serde_json::from_str(&who.body).unwrap();
    assert_eq!(who, json!({"user": "alice", "role": "editor"}));
    let services = b
        .send("GET", &format!("http://{cp}/api/v1/services"), &[], "")
        .await;
    assert_eq!(services.status, 200, "{}", services.body);

    // Replaying the same callback (with its state cookie back): the state is spent.
    let state = query_param(&cb, "state").unwrap();
    let mut replay = Browser::default();
    replay
        .jar
        .entry(host.clone())
        .or_default()
        .insert("weir_oidc_state".into(), state);
    let r = replay.send("GET", &cb, &[], "").await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        r.body.contains("unknown, used or expired state"),
        "{}",
        r.body
    );

    // A tampered state: refused before any code exchange.
    let mut b2 = Browser::default();
    let auth = start_login(&mut b2, cp).await;
    let cb = at_provider(&mut b2, &auth, "alice", &s.callback).await;
    let r = b2
        .send("GET", &replace_param(&cb, "state", "forged"), &[], "")
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("state does not match"), "{}", r.body);
    let who = b2
        .send("GET", &format!("http://{cp}/api/v1/whoami"), &[], "")
        .await;
    assert_eq!(who.status, 401, "no session after a refused callback");

    // The provider enforces PKCE. With a challenge of the test's own (so the verifier is
    // known here): the code without the verifier gets invalid_grant, another code with
    // it gets an ID token; so the verifier is what the provider checks, and the
    // successful sign-in above did send the right one.
    let verifier = "a-test-verifier-of-the-test-itself-0123456789";
    let challenge = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
    };
    let basic = {
        use base64::Engine;
        let enc = |s: &str| weir_catalog::oidc::url_encode(s);
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(CLIENT_ID),
            enc(CLIENT_SECRET)
        ))
    };
    let mut token_status = Vec::new();
    for with_verifier in [false, true] {
        let mut bp = Browser::default();
        let auth = start_login(&mut bp, cp).await;
        let auth = replace_param(&auth, "code_challenge", &challenge);
        let cb = at_provider(&mut bp, &auth, "alice", &s.callback).await;
        let code = query_param(&cb, "code").unwrap();
        let mut form = format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}",
            weir_catalog::oidc::url_encode(&s.callback)
        );
        if with_verifier {
            form.push_str(&format!("&code_verifier={verifier}"));
        }
        let r = Browser::default()
            .send(
                "POST",
                &format!("{}/token", s.provider.issuer),
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("authorization", &format!("Basic {basic}")),
                ],
                &form,
            )
            .await;
        if with_verifier {
            assert!(r.body.contains("id_token"), "{}", r.body);
        } else {
            assert!(r.body.contains("invalid_grant"), "{}", r.body);
        }
        token_status.push(r.status);
    }
    assert_eq!(token_status, vec![400, 200]);

    // A code issued for another challenge: the control plane's verifier does not match,
    // the provider refuses the exchange and so does the control plane.
    let mut b5 = Browser::default();
    let auth = start_login(&mut b5, cp).await;
    let auth = replace_param(&auth, "code_challenge", &challenge);
    let cb = at_provider(&mut b5, &auth, "alice", &s.callback).await;
    let r = b5.send("GET", &cb, &[], "").await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        r.body.contains("refused the code") && r.body.contains("invalid_grant"),
        "{}",
        r.body
    );

    // A tampered nonce in the authorization request: the provider signs it into the ID
    // token and the control plane refuses it.
    let mut b3 = Browser::default();
    let auth = start_login(&mut b3, cp).await;
    let auth = replace_param(&auth, "nonce", "someone-elses-nonce");
    let cb = at_provider(&mut b3, &auth, "alice", &s.callback).await;
    let r = b3.send("GET", &cb, &[], "").await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("nonce"), "{}", r.body);

    // A provider user who is not a Weir user, and a disabled one: refused.
    for who in ["mallory", "bob"] {
        let mut b4 = Browser::default();
        let (r, _) = sign_in(&s, &mut b4, who).await;
        assert_eq!(r.status, 401, "{who}: {}", r.body);
        assert!(r.body.contains("not an enabled Weir user"), "{}", r.body);
    }

    s.cp.component.shutdown().await;

    // Audit: the sign-in (method oidc, client address) and every refusal.
    let store = Store::open(&s.db).unwrap();
    let log = store.audit_log(0, 10_000).unwrap();
    let signins: Vec<_> = log.iter().filter(|e| e.action == "user.sign_in").collect();
    assert_eq!(signins.len(), 1, "{signins:?}");
    assert_eq!(signins[0].actor, "user:alice");
    assert_eq!(signins[0].client.as_deref(), Some("127.0.0.1"));
    let after = signins[0].after.as_ref().unwrap();
    assert_eq!(after["method"], "oidc");
    assert_eq!(after["issuer"], s.provider.issuer.as_str());
    let failures: Vec<_> = log
        .iter()
        .filter(|e| e.action == "auth.failure" && e.target == "bad_oidc")
        .collect();
    // replay, state, verifier, nonce, mallory, bob.
    assert_eq!(failures.len(), 6, "{failures:?}");
    assert_eq!(failures[4].actor, "user:mallory");
    assert_eq!(failures[5].actor, "user:bob");
    assert!(store.verify_audit().unwrap().is_ok());
}

#[tokio::test]
async fn oidc_accepts_es256_id_tokens() {
    let s = setup("ES256").await;
    let mut b = Browser::default();
    let (r, _) = sign_in(&s, &mut b, "alice").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let who = b
        .send(
            "GET",
            &format!("http://{}/api/v1/whoami", s.cp.addr),
            &[],
            "",
        )
        .await;
    assert_eq!(who.status, 200, "{}", who.body);
    s.cp.component.shutdown().await;
}

#[tokio::test]
async fn oidc_failures_go_through_the_limiter() {
    // A low limit: after two refused callbacks from one client, the next gets 429.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.db");
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/auth/oidc/callback");
    let provider = start_provider(&callback, "RS256");
    let config = json!({
        "endpoint": format!("127.0.0.1:{port}"),
        "storage": db.to_str().unwrap(),
        "failed_auth": {"max_failures": 2, "lockout": "30s"},
        "oidc": {
            "issuer": provider.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_url": callback,
        },
    });
    let parsed = ControlPlaneFactory
        .parse(&config, "extensions.control_plane")
        .unwrap();
    let ctx = BuildContext::for_component(ComponentId::parse("control_plane").unwrap());
    let component = parsed.build(&ctx).unwrap();
    component.start().await.unwrap();
    let mut b = Browser::default();
    let url = format!("http://127.0.0.1:{port}/auth/oidc/callback?code=x&state=y");
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(b.send("GET", &url, &[], "").await.status);
        }
        v
    };
    assert_eq!(statuses, vec![401, 401, 429]);
    component.shutdown().await;
}

#[test]
fn oidc_config_errors_name_the_field() {
    let e = match ControlPlaneFactory.parse(
        &json!({"oidc": {"issuer": "http://id.example", "client_id": "c",
                         "redirect_url": "https://w.example/cb"}}),
        "extensions.control_plane",
    ) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted"),
    };
    assert!(e.contains("extensions.control_plane.oidc.issuer"), "{e}");
    assert!(
        e.contains("extensions.control_plane.oidc.redirect_url"),
        "{e}"
    );
}
