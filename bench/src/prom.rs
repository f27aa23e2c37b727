//! `weir-bench prom-scrape`: the `prometheus` receiver's scrape path (HTTP fetch, UTF-8
//! check, exposition parse, conversion to OTLP with start times and staleness) on one
//! thread, against a node_exporter payload scaled up and served from loopback by a thread
//! of its own that only writes prebuilt bytes.
//!
//! The payload is a recorded real node_exporter `/metrics` (bench/data/node_exporter.txt);
//! `--scale N` repeats every series N times with an extra label `replica="<i>"`, keeping
//! each family's `# HELP`/`# TYPE` once, so the families and label shapes stay those of
//! node_exporter.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

/// The payload scaled `scale` times; returns the text and its sample count.
pub fn scaled_payload(text: &str, scale: usize) -> (String, usize) {
    let mut out = String::with_capacity(text.len() * scale);
    let mut samples = 0;
    // Families: comment lines, then the sample lines up to the next comment block.
    let mut block: Vec<&str> = Vec::new();
    let flush = |block: &mut Vec<&str>, out: &mut String, samples: &mut usize| {
        for i in 0..scale {
            for line in block.iter() {
                match line.find('{') {
                    Some(b) => {
                        out.push_str(&line[..=b]);
                        out.push_str(&format!("replica=\"{i}\""));
                        if !line[b + 1..].starts_with('}') {
                            out.push(',');
                        }
                        out.push_str(&line[b + 1..]);
                    }
                    None => {
                        let sp = line.find(' ').unwrap_or(line.len());
                        out.push_str(&line[..sp]);
                        out.push_str(&format!("{{replica=\"{i}\"}}"));
                        out.push_str(&line[sp..]);
                    }
                }
                out.push('\n');
                *samples += 1;
            }
        }
        block.clear();
    };
    for line in text.lines() {
        if line.starts_with('#') {
            flush(&mut block, &mut out, &mut samples);
            out.push_str(line);
            out.push('\n');
        } else if !line.trim().is_empty() {
            block.push(line);
        }
    }
    flush(&mut block, &mut out, &mut samples);
    (out, samples)
}

/// Serves `body` to every request on a loopback port (keep-alive); returns the port.
fn serve(body: Vec<u8>) -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let body = std::sync::Arc::new(body);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let body = body.clone();
            let head = head.clone();
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let Ok(read_half) = stream.try_clone() else {
                    return;
                };
                let mut reader = BufReader::new(read_half);
                let mut w = stream;
                loop {
                    // Read one request head.
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        if line == "\r\n" || line == "\n" {
                            break;
                        }
                    }
                    if w.write_all(head.as_bytes()).is_err() || w.write_all(&body).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(port)
}

/// CPU time of the calling thread.
pub(crate) fn thread_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command (which is in parentheses): utime is field 14, stime 15.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Field 14 is index 11 after the state field (field 3 is index 0).
    let t = ticks(11) + ticks(12);
    Duration::from_millis(t * 10)
}

/// What one run measured.
pub struct Report {
    pub samples_per_scrape: usize,
    pub body_bytes: usize,
    pub scrapes: usize,
    pub elapsed: Duration,
    pub cpu: Duration,
    pub points: usize,
}

/// Runs the scrape loop for `duration` on this thread.
pub fn run(payload: &Path, scale: usize, duration: Duration) -> anyhow::Result<Report> {
    let mut text = String::new();
    std::fs::File::open(payload)
        .with_context(|| format!("{}", payload.display()))?
        .read_to_string(&mut text)?;
    let (body, samples) = scaled_payload(&text, scale);
    let body_bytes = body.len();
    let port = serve(body.into_bytes())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let config = serde_json::json!({"config": {"scrape_configs": [{
            "job_name": "node",
            "scrape_interval": "60s",
            "scrape_timeout": "60s",
            "static_configs": [{"targets": [format!("127.0.0.1:{port}")]}],
        }]}});
        let mut scraper = weir_receivers::prometheus::ScrapeOnce::new(&config)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        // Warm-up: the first scrape creates every series.
        let (_, n) = scraper.scrape().await;
        anyhow::ensure!(
            n == samples,
            "the warm-up scrape saw {n} samples of {samples}"
        );
        let cpu0 = thread_cpu();
        let start = Instant::now();
        let mut scrapes = 0;
        let mut points = 0;
        while start.elapsed() < duration {
            let (req, n) = scraper.scrape().await;
            anyhow::ensure!(n == samples, "a scrape saw {n} samples of {samples}");
            points += count_points(&req);
            scrapes += 1;
        }
        Ok(Report {
            samples_per_scrape: samples,
            body_bytes,
            scrapes,
            elapsed: start.elapsed(),
            cpu: thread_cpu().saturating_sub(cpu0),
            points,
        })
    })
}

fn count_points(
    req: &weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest,
) -> usize {
    use weir_api::otlp::metrics::v1::metric::Data;
    req.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(g)) => g.data_points.len(),
            Some(Data::Histogram(g)) => g.data_points.len(),
            Some(Data::Summary(g)) => g.data_points.len(),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_keeps_families_and_adds_a_label() {
        let (out, n) = scaled_payload(
            "# HELP a A.\n# TYPE a gauge\na 1\n# TYPE b counter\nb{x=\"1\"} 2\nb{} 3\n",
            2,
        );
        assert_eq!(n, 6);
        assert_eq!(
            out,
            "# HELP a A.\n# TYPE a gauge\na{replica=\"0\"} 1\na{replica=\"1\"} 1\n# TYPE b counter\nb{replica=\"0\",x=\"1\"} 2\nb{replica=\"0\"} 3\nb{replica=\"1\",x=\"1\"} 2\nb{replica=\"1\"} 3\n"
        );
    }
}
