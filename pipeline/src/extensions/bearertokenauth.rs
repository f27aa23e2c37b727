//! The `bearertokenauth` extension, as a server authenticator: a receiver that names it in
//! `auth.authenticator` takes only requests whose `authorization` header (or `header`) is
//! `<scheme> <token>` for one of the configured tokens, as the collector-contrib extension of
//! the same name checks them.
//!
//! ```yaml
//! extensions:
//!   bearertokenauth:
//!     scheme: Bearer                  # default; "" compares the bare token
//!     header: authorization           # default
//!     token: ${env:OTLP_TOKEN}        # one token, or ...
//!     # tokens: [a, b]                # ... several (not both), or ...
//!     # filename: tokens.txt          # ... a file: one token per line, re-read on change
//! receivers:
//!   otlp:
//!     protocols:
//!       grpc:
//!         auth:
//!           authenticator: bearertokenauth
//! service:
//!   extensions: [bearertokenauth]
//! ```
//!
//! Tokens are compared in constant time. With `filename` the file's tokens replace `token` /
//! `tokens` (as in contrib); the file is read at start (a missing or empty file is an error
//! naming the field) and again when its modification time changes (checked at most once a
//! second), so tokens can be rotated without a restart; a file that becomes unreadable keeps
//! the last tokens and logs a warning.
//!
//! As a client authenticator (the `otlp` and `otlphttp` exporters' `auth.authenticator`), it
//! sets `header` to `<scheme> <token>` on every request, with the first token (`token`, the
//! first of `tokens`, or the first line of `filename`, re-read when the file changes), as
//! contrib does. Unlike the collector's gRPC client, Weir also sends it over a plain-text
//! connection (`tls.insecure: true`), with a warning when the exporter is built.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use weir_api::{
    parse_component_config, AuthError, BuildContext, BuildError, ClientAuthenticator, Component,
    ConfigErrors, ExtensionConfig, ExtensionFactory, ServerAuthenticator,
};

/// `extensions.bearertokenauth` as written.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct BearerTokenAuthConfig {
    /// The request header that carries the credentials. Default: `authorization`.
    #[serde(default = "default_header")]
    pub header: String,
    /// The auth scheme in front of the token. Default: `Bearer`; empty: the bare token.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// The one accepted token. Default: none.
    #[serde(default)]
    pub token: Option<String>,
    /// Several accepted tokens (not together with `token`). Default: none.
    #[serde(default, deserialize_with = "weir_api::config::opt_string_list")]
    pub tokens: Option<Vec<String>>,
    /// A file of accepted tokens, one per line; replaces `token`/`tokens`. Default: none.
    #[serde(default)]
    pub filename: Option<String>,
}

fn default_header() -> String {
    "authorization".into()
}
fn default_scheme() -> String {
    "Bearer".into()
}

/// The factory of `bearertokenauth`.
#[derive(Debug, Default, Clone, Copy)]
pub struct BearerTokenAuthFactory;

struct Parsed {
    cfg: BearerTokenAuthConfig,
    header: http::HeaderName,
    path: String,
}

impl ExtensionFactory for BearerTokenAuthFactory {
    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ExtensionConfig>, ConfigErrors> {
        let cfg: BearerTokenAuthConfig = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        let tokens = cfg.tokens.as_deref().unwrap_or_default();
        let has_token = cfg.token.as_deref().is_some_and(|t| !t.is_empty());
        if !has_token && tokens.is_empty() && cfg.filename.is_none() {
            errors.push(
                path,
                "no bearer token provided (set token, tokens or filename)",
            );
        }
        if has_token && !tokens.is_empty() {
            errors.push(
                format!("{path}.tokens"),
                "either tokens or token can be set, not both",
            );
        }
        for (i, t) in tokens.iter().enumerate() {
            if t.is_empty() {
                errors.push(format!("{path}.tokens[{i}]"), "must not be empty");
            }
        }
        if cfg.filename.as_deref() == Some("") {
            errors.push(format!("{path}.filename"), "must not be empty");
        }
        let header = match http::HeaderName::from_bytes(cfg.header.as_bytes()) {
            Ok(h) => Some(h),
            Err(_) => {
                errors.push(
                    format!("{path}.header"),
                    format!("{:?} is not a valid header name", cfg.header),
                );
                None
            }
        };
        match header {
            Some(header) if errors.is_empty() => Ok(Box::new(Parsed {
                cfg,
                header,
                path: path.to_string(),
            })),
            _ => Err(errors),
        }
    }
}

impl ExtensionConfig for Parsed {
    fn offers_server_authenticator(&self) -> bool {
        true
    }

    fn offers_client_authenticator(&self) -> bool {
        true
    }

    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Component>, BuildError> {
        let fixed: Vec<String> = match (&self.cfg.token, &self.cfg.tokens) {
            (Some(t), _) if !t.is_empty() => vec![t.clone()],
            (_, Some(list)) => list.clone(),
            _ => Vec::new(),
        };
        let file = match &self.cfg.filename {
            None => None,
            Some(f) => {
                let path = ctx.resolve_path(f);
                let field = format!("{}.filename", self.path);
                let (modified, tokens) = read_tokens(&path)
                    .map_err(|e| BuildError::message(&ctx.id, format!("{field}: {e}")))?;
                Some(TokenFile {
                    path,
                    state: Mutex::new(FileState {
                        modified,
                        checked: Instant::now(),
                        tokens,
                    }),
                })
            }
        };
        let scheme = self.cfg.scheme.clone();
        Ok(Arc::new(BearerTokenAuth {
            inner: Arc::new(Tokens {
                header: self.header.clone(),
                scheme,
                fixed,
                file,
            }),
        }))
    }
}

/// Reads a token file: one token per line, surrounding blanks and empty lines ignored.
fn read_tokens(path: &PathBuf) -> Result<(Option<SystemTime>, Vec<String>), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if tokens.is_empty() {
        return Err(format!("the token file {} holds no token", path.display()));
    }
    Ok((modified, tokens))
}

/// How often the token file's modification time is looked at.
const FILE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

struct TokenFile {
    path: PathBuf,
    state: Mutex<FileState>,
}

struct FileState {
    modified: Option<SystemTime>,
    checked: Instant,
    tokens: Vec<String>,
}

impl TokenFile {
    /// The file's tokens, re-read when it changed since the last look.
    fn tokens(&self) -> Vec<String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.checked.elapsed() >= FILE_CHECK_INTERVAL {
            state.checked = Instant::now();
            let modified = std::fs::metadata(&self.path)
                .and_then(|m| m.modified())
                .ok();
            if modified != state.modified {
                match read_tokens(&self.path) {
                    Ok((m, tokens)) => {
                        state.modified = m;
                        state.tokens = tokens;
                        tracing::info!(file = %self.path.display(), tokens = state.tokens.len(), "bearertokenauth: token file re-read");
                    }
                    Err(e) => {
                        state.modified = modified;
                        tracing::warn!(error = %e, "bearertokenauth: keeping the last tokens");
                    }
                }
            }
        }
        state.tokens.clone()
    }
}

/// The accepted credentials.
struct Tokens {
    header: http::HeaderName,
    scheme: String,
    fixed: Vec<String>,
    file: Option<TokenFile>,
}

impl ServerAuthenticator for Tokens {
    fn authenticate(&self, headers: &http::HeaderMap) -> Result<(), AuthError> {
        let presented = headers
            .get(&self.header)
            .map(|v| v.as_bytes())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| AuthError(format!("missing or empty {} header", self.header)))?;
        let from_file;
        let tokens: &[String] = match &self.file {
            Some(f) => {
                from_file = f.tokens();
                &from_file
            }
            None => &self.fixed,
        };
        let mut matched = subtle::Choice::from(0);
        for t in tokens {
            let expected = if self.scheme.is_empty() {
                t.clone()
            } else {
                format!("{} {t}", self.scheme)
            };
            matched |= presented.ct_eq(expected.as_bytes());
        }
        if bool::from(matched) {
            Ok(())
        } else if !self.scheme.is_empty()
            && !presented.starts_with(format!("{} ", self.scheme).as_bytes())
        {
            Err(AuthError(format!(
                "the {} header does not use the {} scheme",
                self.header, self.scheme
            )))
        } else {
            Err(AuthError("the token is not accepted".into()))
        }
    }
}

impl ClientAuthenticator for Tokens {
    fn headers(&self) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, AuthError> {
        let from_file;
        let tokens: &[String] = match &self.file {
            Some(f) => {
                from_file = f.tokens();
                &from_file
            }
            None => &self.fixed,
        };
        let token = tokens
            .first()
            .ok_or_else(|| AuthError("bearertokenauth has no token to send".into()))?;
        let text = if self.scheme.is_empty() {
            token.clone()
        } else {
            format!("{} {token}", self.scheme)
        };
        let mut value = http::HeaderValue::from_str(&text).map_err(|_| {
            AuthError(format!(
                "the token holds characters the {} header cannot carry",
                self.header
            ))
        })?;
        value.set_sensitive(true);
        Ok(vec![(self.header.clone(), value)])
    }
}

/// The running extension: nothing to start, it only authenticates.
struct BearerTokenAuth {
    inner: Arc<Tokens>,
}

#[async_trait]
impl Component for BearerTokenAuth {
    fn server_authenticator(&self) -> Option<Arc<dyn ServerAuthenticator>> {
        Some(self.inner.clone())
    }

    fn client_authenticator(&self) -> Option<Arc<dyn ClientAuthenticator>> {
        Some(self.inner.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn build(config: serde_json::Value) -> Arc<dyn ServerAuthenticator> {
        let parsed = BearerTokenAuthFactory
            .parse(&config, "extensions.bearertokenauth")
            .unwrap_or_else(|e| panic!("{e:?}"));
        let ctx =
            BuildContext::for_component(weir_api::ComponentId::parse("bearertokenauth").unwrap());
        parsed
            .build(&ctx)
            .unwrap_or_else(|e| panic!("{e}"))
            .server_authenticator()
            .unwrap()
    }

    fn headers(name: &str, value: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn a_token_with_its_scheme_is_accepted_and_nothing_else() {
        let a = build(serde_json::json!({"token": "s3cret"}));
        assert!(a
            .authenticate(&headers("authorization", "Bearer s3cret"))
            .is_ok());
        assert_eq!(
            a.authenticate(&http::HeaderMap::new()).unwrap_err().0,
            "missing or empty authorization header"
        );
        assert_eq!(
            a.authenticate(&headers("authorization", "Bearer s3cre"))
                .unwrap_err()
                .0,
            "the token is not accepted"
        );
        assert_eq!(
            a.authenticate(&headers("authorization", "Basic s3cret"))
                .unwrap_err()
                .0,
            "the authorization header does not use the Bearer scheme"
        );
        assert!(a.authenticate(&headers("authorization", "s3cret")).is_err());
    }

    #[test]
    fn several_tokens_a_custom_header_and_no_scheme() {
        let a = build(
            serde_json::json!({"tokens": ["one", "two"], "scheme": "", "header": "X-Api-Key"}),
        );
        assert!(a.authenticate(&headers("x-api-key", "one")).is_ok());
        assert!(a.authenticate(&headers("x-api-key", "two")).is_ok());
        assert!(a.authenticate(&headers("x-api-key", "three")).is_err());
        assert!(a.authenticate(&headers("authorization", "one")).is_err());
    }

    #[test]
    fn a_token_file_is_read_and_re_read_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, "first\n\n  second  \n").unwrap();
        let a =
            build(serde_json::json!({"filename": file.display().to_string(), "token": "ignored"}));
        assert!(a
            .authenticate(&headers("authorization", "Bearer second"))
            .is_ok());
        assert!(a
            .authenticate(&headers("authorization", "Bearer ignored"))
            .is_err());
        // A different modification time makes the next check (after a second) re-read it.
        std::thread::sleep(Duration::from_millis(1100));
        std::fs::write(&file, "third\n").unwrap();
        let changed = std::fs::File::options().write(true).open(&file).unwrap();
        changed
            .set_modified(SystemTime::now() + Duration::from_secs(5))
            .unwrap();
        assert!(a
            .authenticate(&headers("authorization", "Bearer third"))
            .is_ok());
        assert!(a
            .authenticate(&headers("authorization", "Bearer first"))
            .is_err());
    }

    #[test]
    fn as_a_client_it_sends_the_first_token_with_the_scheme() {
        let client = |config: serde_json::Value| {
            let ctx = BuildContext::for_component(
                weir_api::ComponentId::parse("bearertokenauth").unwrap(),
            );
            BearerTokenAuthFactory
                .parse(&config, "extensions.bearertokenauth")
                .unwrap_or_else(|e| panic!("{e:?}"))
                .build(&ctx)
                .unwrap_or_else(|e| panic!("{e}"))
                .client_authenticator()
                .unwrap()
        };
        let sent = |c: &Arc<dyn ClientAuthenticator>| {
            c.headers()
                .unwrap()
                .into_iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
                .collect::<Vec<_>>()
        };
        let a = client(serde_json::json!({"token": "s3cret"}));
        assert_eq!(sent(&a), [("authorization".into(), "Bearer s3cret".into())]);
        let b = client(
            serde_json::json!({"tokens": ["one", "two"], "scheme": "", "header": "X-Api-Key"}),
        );
        assert_eq!(sent(&b), [("x-api-key".into(), "one".into())]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "\n  first \nsecond\n").unwrap();
        let c =
            client(serde_json::json!({"filename": file.display().to_string(), "scheme": "Token"}));
        assert_eq!(sent(&c), [("authorization".into(), "Token first".into())]);
        std::thread::sleep(Duration::from_millis(1100));
        std::fs::write(&file, "rotated\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(SystemTime::now() + Duration::from_secs(5))
            .unwrap();
        assert_eq!(sent(&c), [("authorization".into(), "Token rotated".into())]);
    }

    #[test]
    fn bad_configs_name_their_field() {
        let err = |v: serde_json::Value| {
            BearerTokenAuthFactory
                .parse(&v, "extensions.bearertokenauth")
                .err()
                .unwrap()
                .0
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            err(serde_json::json!({})),
            ["extensions.bearertokenauth: no bearer token provided (set token, tokens or filename)"]
        );
        assert_eq!(
            err(serde_json::json!({"token": "a", "tokens": ["b"]})),
            ["extensions.bearertokenauth.tokens: either tokens or token can be set, not both"]
        );
        assert_eq!(
            err(serde_json::json!({"token": "a", "header": "bad header"})),
            ["extensions.bearertokenauth.header: \"bad header\" is not a valid header name"]
        );
        let missing = BearerTokenAuthFactory
            .parse(
                &serde_json::json!({"filename": "/nonexistent/tokens"}),
                "extensions.bearertokenauth",
            )
            .unwrap()
            .build(&BuildContext::for_component(
                weir_api::ComponentId::parse("bearertokenauth").unwrap(),
            ))
            .err()
            .unwrap()
            .to_string();
        assert!(
            missing.contains("extensions.bearertokenauth.filename: cannot read the token file /nonexistent/tokens"),
            "{missing}"
        );
    }
}
