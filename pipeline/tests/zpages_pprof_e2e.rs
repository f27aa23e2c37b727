//! The `zpages` and `pprof` extensions on a real `weir`: real HTTP requests to their pages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::*;

#[test]
fn zpages_and_pprof_serve_their_pages() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::pick();
    let (zpages, pprof) = (free_port(), free_port());
    let config = format!(
        "receivers:
  otlp:
    protocols:
      grpc: {{endpoint: '127.0.0.1:{grpc}'}}
processors:
  batch:
exporters:
  nop:
  debug/<b>:
connectors:
  forward:
extensions:
  zpages: {{endpoint: '127.0.0.1:{zpages}', expvar: {{enabled: false}}}}
  pprof: {{endpoint: '127.0.0.1:{pprof}', block_profile_fraction: 3, mutex_profile_fraction: 5, save_to_file: cpu.prof}}
service:
  extensions: [zpages, pprof]
  telemetry:
    metrics: {{level: none}}
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [forward]}}
    traces/out: {{receivers: [forward], exporters: [nop, debug/<b>]}}
    logs: {{receivers: [otlp], exporters: [nop]}}
",
        grpc = ports.grpc,
    );
    let cfg = write(dir.path(), "weir.yaml", &config);
    let mut child = spawn(dir.path(), &cfg, &[]);
    let servicez = wait_for_status(zpages, "/debug/servicez", 200, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{}", log_of(dir.path())));
    assert!(servicez.starts_with("<!DOCTYPE html>"), "{servicez}");
    assert!(servicez.contains("<th>Version</th>"), "{servicez}");
    assert!(servicez.contains("href=\"/debug/pipelinez\""), "{servicez}");
    // Ready once every component started.
    let mut ready = false;
    for _ in 0..100 {
        if http_get(zpages, "/debug/servicez")
            .unwrap()
            .1
            .contains("every component is started")
        {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ready);

    let (status, pipelinez) = http_get(zpages, "/debug/pipelinez").unwrap();
    assert_eq!(status, 200);
    for row in [
        "<tr><td>logs</td><td><span class=\"receiver\">otlp</span></td><td></td><td><span class=\"exporter\">nop</span></td></tr>",
        "<tr><td>traces</td><td><span class=\"receiver\">otlp</span></td><td><span class=\"processor\">batch</span></td><td><span class=\"exporter\">forward</span></td></tr>",
        // Component names are escaped.
        "<tr><td>traces/out</td><td><span class=\"receiver\">forward</span></td><td></td><td><span class=\"exporter\">nop</span> &rarr; <span class=\"exporter\">debug/&lt;b&gt;</span></td></tr>",
        "Connectors (an exporter of one pipeline, a receiver of another): <span class=\"connector\">forward</span>",
    ] {
        assert!(pipelinez.contains(row), "{row} not in:\n{pipelinez}");
    }
    let (status, extensionz) = http_get(zpages, "/debug/extensionz").unwrap();
    assert_eq!(status, 200);
    assert!(
        extensionz.contains("<tr><td>zpages</td></tr>\n<tr><td>pprof</td></tr>"),
        "{extensionz}"
    );
    assert_eq!(http_get(zpages, "/debug/featurez").unwrap().0, 200);
    assert_eq!(http_get(zpages, "/debug/tracez").unwrap().0, 404);

    let (status, index) = http_get(pprof, "/debug/pprof/").unwrap();
    assert_eq!(status, 200);
    assert!(index.contains("<a href=\"threads\">threads</a>"), "{index}");
    let (status, cmdline) = http_get(pprof, "/debug/pprof/cmdline").unwrap();
    assert_eq!(status, 200);
    let args: Vec<&str> = cmdline.split('\0').collect();
    assert_eq!(
        args[1..],
        ["--config", cfg.to_str().unwrap()],
        "{cmdline:?}"
    );
    let (status, threads) = http_get(pprof, "/debug/pprof/threads").unwrap();
    assert_eq!(status, 200);
    assert!(
        threads.starts_with("tid\tname\tuser_seconds\tsystem_seconds\n"),
        "{threads}"
    );
    assert!(threads.lines().count() >= 3, "{threads}");
    let (status, st) = http_get(pprof, "/debug/pprof/status").unwrap();
    assert_eq!(status, 200);
    assert!(st.contains("VmRSS:"), "{st}");
    let (status, body) = http_get(pprof, "/debug/pprof/profile?seconds=1").unwrap();
    assert_eq!(status, 501);
    assert!(body.contains("not a Go program"), "{body}");
    assert_eq!(http_get(pprof, "/debug/pprof/nonsense").unwrap().0, 404);

    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(20))
        .unwrap()
        .success());
    let log = log_of(dir.path());
    assert!(
        log.contains("save_to_file is accepted but Weir writes no CPU profile"),
        "{log}"
    );
    assert!(!dir.path().join("cpu.prof").exists());
}
