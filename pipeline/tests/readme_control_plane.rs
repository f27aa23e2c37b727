//! The README's control-plane steps, run exactly as written from a fresh working directory
//! holding a copy of `configs/`: create tokens with `weir admin token create --db
//! weir-catalog.db --role admin` and `--role edge --edge edge-1`, create the UI's user
//! (`weir admin user create ... alice`), start `weir --config configs/catalog.yaml`, sign
//! in to the API with the admin token, enrol alice and sign her in with password + TOTP as
//! the UI does (no 401: the control plane opens the same `weir-catalog.db` of the working
//! directory and says so), and start the edge with `configs/edge.yaml` on the same machine
//! (no port clash): it syncs under a stable identity, and its metadata reaches the catalog;
//! the control plane's own OTLP receiver refuses a request without a token and takes the
//! README's curl with the edge token.
//!
//! It uses the configs' fixed ports (4317/4318/8888 for the edge; 4327/4328/8080/8889/13133
//! for the control plane); when one is taken on this machine the test says which.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{sigterm, wait_exit};

fn weir_in(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
    c.current_dir(dir);
    c
}

fn http(method: &str, port: u16, path: &str, token: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((
        status,
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    ))
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn token(dir: &Path, args: &[&str]) -> String {
    let out = weir_in(dir)
        .args(["admin", "token", "create", "--db", "weir-catalog.db"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        sigterm(&self.0);
        if wait_exit(&mut self.0, Duration::from_secs(10)).is_none() {
            let _ = self.0.kill();
        }
    }
}

fn log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

#[test]
fn readme_control_plane_steps_work_as_written() {
    for port in [4317, 4318, 4327, 4328, 8080, 8888, 8889, 13133] {
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            panic!("port {port} is in use on this machine; the README's configs need it");
        }
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs"),
        &dir.join("configs"),
    );

    let admin = token(dir, &["--role", "admin"]);
    let edge_token = token(dir, &["--role", "edge", "--edge", "edge-1"]);
    let out = weir_in(dir)
        .args([
            "admin",
            "user",
            "create",
            "--db",
            "weir-catalog.db",
            "--role",
            "admin",
            "alice",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let enrolment = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(enrolment.starts_with("weir_enrol_"), "{enrolment}");

    let cp = Running(
        weir_in(dir)
            .args(["--config", "configs/catalog.yaml"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("cp.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let up = wait_until(Duration::from_secs(20), || {
        http("GET", 8080, "/api/v1/overview", &admin, "").is_some_and(|(s, _)| s == 200)
    });
    assert!(
        up,
        "the UI's API never answered 200 with the admin token:\n{}",
        log(dir, "cp.log")
    );
    // The UI's sign-in, as its page does it: enrol with the secret, then password + code
    // into a session cookie that reads the API.
    let (st, body) = http(
        "POST",
        8080,
        "/api/v1/enrol/start",
        "",
        &format!(r#"{{"user":"alice","secret":"{enrolment}"}}"#),
    )
    .unwrap();
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let totp_secret =
        weir_catalog::users::base32_decode(v["totp_secret"].as_str().unwrap()).unwrap();
    let now = weir_catalog::store::now_secs() as u64;
    let code = |t| format!("{:06}", weir_catalog::users::totp(&totp_secret, t));
    let (st, body) = http(
        "POST",
        8080,
        "/api/v1/enrol/finish",
        "",
        &format!(
            r#"{{"user":"alice","secret":"{enrolment}","password":"a long readme password","code":"{}"}}"#,
            code(now)
        ),
    )
    .unwrap();
    assert_eq!(st, 204, "{body}");
    let mut s = TcpStream::connect(("127.0.0.1", 8080)).unwrap();
    let body = format!(
        r#"{{"user":"alice","password":"a long readme password","code":"{}"}}"#,
        code(now + 30)
    );
    write!(
        s,
        "POST /api/v1/sign-in HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.0 200"), "{resp}");
    let cookie = resp
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let mut s = TcpStream::connect(("127.0.0.1", 8080)).unwrap();
    write!(
        s,
        "GET /api/v1/whoami HTTP/1.0\r\nHost: localhost\r\nCookie: {cookie}\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(
        resp.starts_with("HTTP/1.0 200") && resp.contains(r#""user":"alice""#),
        "{resp}"
    );

    let cp_log = log(dir, "cp.log");
    let db = std::fs::canonicalize(dir.join("weir-catalog.db")).unwrap();
    assert!(
        cp_log.contains("control plane store opened") && cp_log.contains(&db.display().to_string()),
        "the log does not name the store it opened ({}):\n{cp_log}",
        db.display()
    );
    assert!(!cp_log.contains("has no API tokens"), "{cp_log}");

    let edge = Running(
        weir_in(dir)
            .args(["--config", "configs/edge.yaml"])
            .env("WEIR_CONTROL_PLANE", "http://localhost:8080")
            .env("WEIR_EDGE_TOKEN", &edge_token)
            .env("WEIR_UPSTREAM", "localhost:14317")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("edge.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    // The edge syncs (both run on one machine: no port clash).
    let edges = || {
        http("GET", 8080, "/api/v1/policies", &admin, "")
            .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
            .map(|v| v["edges"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    };
    assert!(
        wait_until(Duration::from_secs(20), || edges()
            .iter()
            .any(|e| e["service"] == "weir-edge")),
        "the edge never synced:\nedge:\n{}\ncp:\n{}",
        log(dir, "edge.log"),
        log(dir, "cp.log")
    );
    let id = edges()[0]["edge"].as_str().unwrap().to_string();
    let kept = std::fs::read_to_string(dir.join("configs/weir-edge-cache/instance-id")).unwrap();
    assert_eq!(
        id,
        format!("edge-1/{}", kept.trim()),
        "the edge's identity is kept beside its policy cache"
    );
    // The missing-directory warning is gone: configs/policies exists.
    assert!(
        !log(dir, "edge.log").contains("policy file not loaded"),
        "{}",
        log(dir, "edge.log")
    );
    assert!(
        !log(dir, "edge.log").contains("././"),
        "{}",
        log(dir, "edge.log")
    );

    // Telemetry sent to the edge reaches the catalog (metadata only).
    let body = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"readme"}}]},"scopeLogs":[{"logRecords":[{"severityText":"INFO","body":{"stringValue":"hello from the README"}}]}]}]}"#;
    let (st, b) = http("POST", 4318, "/v1/logs", "", body).expect("edge OTLP/HTTP on 4318");
    assert_eq!(st, 200, "{b}");
    assert!(
        wait_until(Duration::from_secs(30), || {
            http("GET", 8080, "/api/v1/services/readme", &admin, "").is_some_and(|(s, _)| s == 200)
        }),
        "the edge's metadata never reached the catalog:\nedge:\n{}",
        log(dir, "edge.log")
    );

    // The control plane's own OTLP receiver takes the edge token, as the README's curl
    // shows, and refuses a request without one (nothing of it is kept).
    let direct = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"direct"}}]},"scopeLogs":[{"logRecords":[{"body":{"stringValue":"hi"}}]}]}]}"#;
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    assert!(
        readme.contains(&format!("-d '{direct}'")),
        "the README's curl to the catalog receiver changed; keep this test in step"
    );
    let unauthenticated = direct.replace("\"direct\"", "\"no-token\"");
    let (st, b) =
        http("POST", 4328, "/v1/logs", "", &unauthenticated).expect("catalog OTLP/HTTP on 4328");
    assert_eq!(st, 401, "{b}");
    let (st, b) = http("POST", 4328, "/v1/logs", &edge_token, direct).expect("catalog OTLP/HTTP");
    assert_eq!(st, 200, "{b}");
    assert!(
        wait_until(Duration::from_secs(30), || {
            http("GET", 8080, "/api/v1/services/direct", &admin, "").is_some_and(|(s, _)| s == 200)
        }),
        "the data sent to the catalog's receiver never arrived:\n{}",
        log(dir, "cp.log")
    );
    assert_eq!(
        http("GET", 8080, "/api/v1/services/no-token", &admin, "").map(|(s, _)| s),
        Some(404),
        "a refused request left something in the catalog"
    );

    // A restarted edge keeps its identity: it syncs again and is still the one edge listed.
    drop(edge);
    let restarted = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let edge = Running(
        weir_in(dir)
            .args(["--config", "configs/edge.yaml"])
            .env("WEIR_CONTROL_PLANE", "http://localhost:8080")
            .env("WEIR_EDGE_TOKEN", &edge_token)
            .env("WEIR_UPSTREAM", "localhost:14317")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("edge2.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_until(Duration::from_secs(20), || edges().iter().all(|e| e
            ["last_sync"]
            .as_i64()
            .unwrap_or(0)
            >= restarted)),
        "the restarted edge never synced:\n{}",
        log(dir, "edge2.log")
    );
    let list = edges();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["edge"], id.as_str());
    drop(edge);
    drop(cp);
}

#[test]
fn a_missing_edge_token_says_so() {
    // The edge alone, pointed at a control plane that refuses it: its log says the token is
    // missing, not that it is invalid. Ports are free ones (no fixed-port clash with above).
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let cp_port = support::free_port();
    let db = dir.join("cp.db");
    let cfg = support::write(
        dir,
        "cp.yaml",
        &format!(
            "extensions:\n  control_plane: {{endpoint: '127.0.0.1:{cp_port}', storage: '{}'}}\nreceivers:\n  otlp: {{protocols: {{http: {{endpoint: '127.0.0.1:{}'}}}}}}\nexporters:\n  debug: {{}}\nservice:\n  extensions: [control_plane]\n  telemetry: {{metrics: {{address: '127.0.0.1:{}'}}}}\n  pipelines:\n    logs: {{receivers: [otlp], exporters: [debug]}}\n",
            db.display(),
            support::free_port(),
            support::free_port()
        ),
    );
    let cp = Running(
        weir_in(dir)
            .args(["--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("cp.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    assert!(wait_until(Duration::from_secs(20), || http(
        "GET",
        cp_port,
        "/api/v1/overview",
        "x",
        ""
    )
    .is_some()));
    assert!(
        log(dir, "cp.log").contains("has no API tokens"),
        "{}",
        log(dir, "cp.log")
    );
    let edge_cfg = support::write(
        dir,
        "edge.yaml",
        &format!(
            "receivers:\n  otlp: {{protocols: {{http: {{endpoint: '127.0.0.1:{}'}}}}}}\nprocessors:\n  policy:\n    sources:\n      - http:\n          endpoint: 'http://127.0.0.1:{cp_port}/v1/policy/sync'\n          headers: {{authorization: 'Bearer ${{env:WEIR_EDGE_TOKEN:-none}}'}}\n          interval: 1s\nexporters:\n  debug: {{}}\nservice:\n  telemetry: {{metrics: {{address: '127.0.0.1:{}'}}}}\n  pipelines:\n    logs: {{receivers: [otlp], processors: [policy], exporters: [debug]}}\n",
            support::free_port(),
            support::free_port()
        ),
    );
    let edge = Running(
        weir_in(dir)
            .args(["--config"])
            .arg(&edge_cfg)
            .env_remove("WEIR_EDGE_TOKEN")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("edge.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_until(Duration::from_secs(20), || log(dir, "edge.log")
            .contains("no edge token is configured")),
        "{}",
        log(dir, "edge.log")
    );
    assert!(log(dir, "edge.log").contains("set WEIR_EDGE_TOKEN"));
    drop(edge);
    drop(cp);
}
