//! `http:` and `https:` config sources: the YAML is fetched with one GET when the config loads.
//!
//! As in the collector, `https:` verifies the server certificate against the system's trusted
//! roots (on Linux, `SSL_CERT_FILE` / `SSL_CERT_DIR` name other root files, as Go honours them);
//! redirects are followed (at most 10); only status 200 is accepted. Weir adds bounds the
//! collector lacks: the body is at most [`MAX_BODY`] bytes and the whole exchange at most
//! [`TIMEOUT`]. Every error names the URI.

use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The largest config body accepted (16 MiB).
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// The longest a fetch may take, redirects included.
pub const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_REDIRECTS: usize = 10;

/// Whether `arg` is an `http:` or `https:` URI (the collector's provider schemes).
pub fn is_http_uri(arg: &str) -> bool {
    arg.starts_with("http://") || arg.starts_with("https://")
}

/// Fetches `uri` and returns the body as text. Runs on a thread of its own with its own
/// runtime, so it may be called from synchronous code and from inside a tokio runtime alike.
pub fn fetch(uri: &str) -> Result<String, String> {
    let owned = uri.to_string();
    let joined = std::thread::Builder::new()
        .name("weir-config-fetch".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a runtime to fetch {owned:?}: {e}"))?;
            rt.block_on(async {
                match tokio::time::timeout(TIMEOUT, fetch_async(&owned)).await {
                    Ok(r) => r,
                    Err(_) => Err(format!(
                        "fetching {owned:?} took longer than {}s",
                        TIMEOUT.as_secs()
                    )),
                }
            })
        })
        .map_err(|e| format!("cannot start a thread to fetch {uri:?}: {e}"))?
        .join();
    joined.unwrap_or_else(|_| {
        Err(format!(
            "fetching {uri:?} failed (the fetch thread panicked)"
        ))
    })
}

async fn fetch_async(uri: &str) -> Result<String, String> {
    let settings = weir_tls::TlsClientSettings {
        // Go's default minimum for clients is TLS 1.2; the collector's provider keeps it.
        min_version: Some(weir_tls::TlsVersion::V1_2),
        ..Default::default()
    };
    let tls = settings
        .load("https", |p: &str| std::path::PathBuf::from(p))
        .map_err(|e| format!("cannot set up TLS to fetch {uri:?}: {e}"))?;
    let connector = tls.https_connector(weir_tls::HttpVersions::Http1And2);
    let client: Client<_, Empty<bytes::Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    let mut current: http::Uri = uri
        .parse()
        .map_err(|e| format!("invalid uri {uri:?}: {e}"))?;
    for _ in 0..=MAX_REDIRECTS {
        match current.scheme_str() {
            Some("http") | Some("https") => {}
            _ => {
                return Err(format!(
                    "invalid uri {uri:?}: the scheme must be http or https"
                ))
            }
        }
        if current.host().is_none() {
            return Err(format!("invalid uri {uri:?}: no host"));
        }
        let request = http::Request::get(current.clone())
            .header(
                http::header::USER_AGENT,
                concat!("weir/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::new())
            .map_err(|e| format!("invalid uri {uri:?}: {e}"))?;
        let response = client.request(request).await.map_err(|e| {
            let mut message = format!("cannot fetch the config from {uri:?}: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(&format!(": {s}"));
                source = s.source();
            }
            message
        })?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| {
                    format!("{uri:?} answered {status} without a usable Location header")
                })?;
            current = resolve_location(&current, location)
                .ok_or_else(|| format!("{uri:?} redirected to an invalid location {location:?}"))?;
            continue;
        }
        if status != http::StatusCode::OK {
            return Err(format!(
                "cannot fetch the config from {uri:?}: status {} (200 is required)",
                status.as_u16()
            ));
        }
        if let Some(len) = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > MAX_BODY as u64 {
                return Err(too_large(uri));
            }
        }
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    too_large(uri)
                } else {
                    format!("cannot read the config body from {uri:?}: {e}")
                }
            })?
            .to_bytes();
        return String::from_utf8(body.to_vec())
            .map_err(|_| format!("the config from {uri:?} is not UTF-8 text"));
    }
    Err(format!(
        "cannot fetch the config from {uri:?}: more than {MAX_REDIRECTS} redirects"
    ))
}

fn too_large(uri: &str) -> String {
    format!("the config from {uri:?} is larger than the limit of {MAX_BODY} bytes")
}

/// The target of a redirect: an absolute URI, or a path on the same server.
fn resolve_location(base: &http::Uri, location: &str) -> Option<http::Uri> {
    if is_http_uri(location) {
        return location.parse().ok();
    }
    if !location.starts_with('/') {
        return None;
    }
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(location.parse().ok()?);
    http::Uri::from_parts(parts).ok()
}
