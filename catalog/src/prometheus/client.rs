//! The GET-only client of a Prometheus server's HTTP API: the URL check, credentials
//! (bearer token, basic auth, from files), the size and time limits of an answer, and the
//! errors naming the API path.

use std::time::Duration;

use bytes::Bytes;
use http::header;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use serde_json::Value;
use weir_tls::hyper_rustls::HttpsConnector;

/// Default cap on one API answer's body.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 32 << 20;
/// Default timeout of one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed read, naming the API path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prometheus {base}: GET {path}: {message}")]
pub struct PromError {
    /// The server (URL without credentials).
    pub base: String,
    /// The API path (`/api/v1/status/tsdb`, ...).
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// How requests authenticate.
#[derive(Clone, Default)]
pub enum PromAuth {
    /// None.
    #[default]
    None,
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

impl std::fmt::Debug for PromAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PromAuth::None => "none",
            PromAuth::Basic { .. } => "basic (redacted)",
            PromAuth::Bearer(_) => "bearer (redacted)",
        })
    }
}

fn read_secret(path: &std::path::Path, what: &str) -> Result<String, String> {
    let s = std::fs::read_to_string(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    let s = s.trim_end_matches(['\r', '\n']).to_string();
    if s.is_empty() {
        return Err(format!("{what} {}: the file is empty", path.display()));
    }
    Ok(s)
}

impl PromAuth {
    /// From a user name with a password file, or a bearer token file (as Prometheus's own
    /// `basic_auth.password_file` and `authorization.credentials_file`; one trailing newline
    /// is ignored).
    pub fn from_files(
        username: Option<&str>,
        password_file: Option<&std::path::Path>,
        bearer_token_file: Option<&std::path::Path>,
    ) -> Result<PromAuth, String> {
        match (username, password_file, bearer_token_file) {
            (None, None, None) => Ok(PromAuth::None),
            (Some(u), Some(p), None) => Ok(PromAuth::Basic {
                username: u.to_string(),
                password: read_secret(p, "password file")?,
            }),
            (None, None, Some(t)) => Ok(PromAuth::Bearer(read_secret(t, "bearer token file")?)),
            (Some(_), None, _) => Err("basic authentication needs a password file too".into()),
            (None, Some(_), _) => Err("a password file needs a user name too".into()),
            (Some(_), Some(_), Some(_)) => {
                Err("choose basic authentication or a bearer token, not both".into())
            }
        }
    }

    fn header(&self) -> Option<String> {
        use base64::Engine;
        match self {
            PromAuth::None => None,
            PromAuth::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            PromAuth::Bearer(t) => Some(format!("Bearer {t}")),
        }
    }
}

/// A Prometheus HTTP API client that can only send GET requests.
pub struct PromClient {
    pub(super) base: String,
    auth: PromAuth,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    max_response_bytes: usize,
    timeout: Duration,
}

/// Checks a Prometheus base URL: `http://` or `https://`, host, optional path prefix, no
/// credentials, query or fragment. Returns it without a trailing `/`.
pub fn check_url(url: &str) -> Result<String, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(format!(
                "{url:?}: the URL must start with http:// or https://"
            ))
        }
    }
    let Some(auth) = uri.authority() else {
        return Err(format!("{url:?}: no host"));
    };
    if auth.as_str().contains('@') {
        return Err(format!(
            "{}: credentials in the URL are not accepted; use a user name with a password file, or a bearer token file",
            uri.host().unwrap_or("")
        ));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(format!(
            "{url:?}: the URL must not have a query or fragment"
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Percent-encodes a query-string component.
pub(super) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl PromClient {
    /// A client for `base` (checked with [`check_url`]); `https://` is verified with `tls`.
    pub fn new(
        base: &str,
        auth: PromAuth,
        tls: &weir_tls::ClientTls,
        max_response_bytes: usize,
        timeout: Duration,
    ) -> Result<PromClient, String> {
        let base = check_url(base)?;
        let connector = tls.https_connector(weir_tls::HttpVersions::Http1And2);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        Ok(PromClient {
            base,
            auth,
            client,
            max_response_bytes: max_response_bytes.max(1024),
            timeout,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub(super) fn err(&self, path: &str, message: impl Into<String>) -> PromError {
        PromError {
            base: self.base.clone(),
            path: format!("/api/v1/{path}"),
            message: message.into(),
        }
    }

    /// `GET <base>/api/v1/<path>?<query>`: the `data` of a `success` answer. Errors name the
    /// path: no answer, HTTP status (with Prometheus's error text), an answer above the size
    /// cap, not JSON, or not `success`.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, PromError> {
        let mut url = format!("{}/api/v1/{path}", self.base);
        if !query.is_empty() {
            let qs: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            url = format!("{url}?{}", qs.join("&"));
        }
        let mut req = http::Request::get(&url).header(header::ACCEPT, "application/json");
        if let Some(h) = self.auth.header() {
            req = req.header(header::AUTHORIZATION, h);
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| self.err(path, e.to_string()))?;
        let resp = tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| self.err(path, format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| self.err(path, format!("cannot connect: {e}")))?;
        let status = resp.status();
        let max = self.max_response_bytes;
        if let Some(len) = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > max as u64 {
                return Err(self.err(
                    path,
                    format!("the answer is {len} bytes, above the cap of {max} bytes"),
                ));
            }
        }
        let body =
            tokio::time::timeout(self.timeout, Limited::new(resp.into_body(), max).collect())
                .await
                .map_err(|_| {
                    self.err(
                        path,
                        format!("the answer did not end within {:?}", self.timeout),
                    )
                })?
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        self.err(
                            path,
                            format!("the answer is larger than the cap of {max} bytes"),
                        )
                    } else {
                        self.err(path, format!("reading the answer: {e}"))
                    }
                })?
                .to_bytes();
        let v: Result<Value, _> = serde_json::from_slice(&body);
        if !status.is_success() {
            let detail = v
                .as_ref()
                .ok()
                .and_then(|v| v.get("error"))
                .and_then(Value::as_str)
                .map(|s| format!(": {}", s.chars().take(200).collect::<String>()))
                .unwrap_or_default();
            return Err(self.err(path, format!("HTTP {status}{detail}")));
        }
        let mut v = v.map_err(|e| self.err(path, format!("the answer is not JSON: {e}")))?;
        if v.get("status").and_then(Value::as_str) != Some("success") {
            let detail = v
                .get("error")
                .and_then(Value::as_str)
                .map(|s| s.chars().take(200).collect::<String>())
                .unwrap_or_else(|| "no `status: success`".into());
            return Err(self.err(path, format!("Prometheus answered an error: {detail}")));
        }
        match v.get_mut("data") {
            Some(d) => Ok(d.take()),
            None => Err(self.err(path, "the answer has no `data`")),
        }
    }
}
