//! OpenID Connect single sign-on (optional, `extensions.control_plane.oidc`): the
//! authorization code flow with PKCE (S256).
//!
//! - `GET /auth/oidc/login` reads the provider's discovery document
//!   (`<issuer>/.well-known/openid-configuration`, cached), keeps a fresh `state`, `nonce`
//!   and PKCE `code_verifier` in memory for 10 minutes, binds the `state` to the browser
//!   with an HttpOnly `SameSite=Lax` cookie (the provider's redirect back is a cross-site
//!   navigation, which a `Strict` cookie would not survive) and redirects (303) to the
//!   provider's authorization endpoint with the `code_challenge`.
//! - `GET /auth/oidc/callback` checks `state` against the cookie and the pending logins
//!   (each `state` is usable once), exchanges the code at the token endpoint with the
//!   `code_verifier` (client secret sent as HTTP Basic, or `client_id` alone for a public
//!   client), then validates the ID token: RS256 or ES256 signature against the provider's
//!   JWKS, `iss`, `aud` (and `azp` when there are several audiences), `exp` (60 s leeway)
//!   and `nonce`. The `user_claim` (default `preferred_username`) must name an enabled
//!   Weir user (`weir admin user create`); that user's role applies. Success sets the same
//!   session cookie as password + TOTP sign-in and redirects to `/`; it is audited as
//!   `user.sign_in` with `method: oidc`.
//! - Every failed callback counts in the failed-authentication limiter (per client address,
//!   and per account once the user is known), is refused with 401 naming what failed, and
//!   is audited as `auth.failure` with the reason `bad_oidc`; a locked-out client gets 429.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use weir_tls::hyper_rustls::HttpsConnector;

use crate::api::ApiState;
use crate::users::{UserError, SESSION_TTL_SECS};

/// Name of the cookie that binds a pending login's `state` to the browser.
pub const STATE_COOKIE: &str = "weir_oidc_state";
/// How long a login may take at the provider.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// Pending logins kept at most (beyond: 503 until some expire).
const MAX_PENDING: usize = 10_000;
/// Largest discovery, JWKS or token response read.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Time allowed for one request to the provider.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// Clock leeway for `exp`.
const LEEWAY_SECS: i64 = 60;

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into()]
}

fn default_user_claim() -> String {
    "preferred_username".into()
}

/// `extensions.control_plane.oidc`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL, exactly as its ID tokens carry it in `iss`. `https://`,
    /// or `http://` on a loopback host only.
    pub issuer: String,
    /// This control plane's client id at the provider.
    pub client_id: String,
    /// The client secret (e.g. `${env:WEIR_OIDC_CLIENT_SECRET}`); none for a public
    /// client (PKCE alone).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// The callback URL registered at the provider: this control plane's
    /// `.../auth/oidc/callback` as browsers reach it.
    pub redirect_url: String,
    /// Scopes asked for. Must include `openid`. Default: `[openid, profile]`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The ID token claim holding the Weir user name. Default: `preferred_username`.
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
}

fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl OidcConfig {
    /// Problems as (field, message).
    pub fn check(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (field, url) in [
            ("issuer", &self.issuer),
            ("redirect_url", &self.redirect_url),
        ] {
            if !(url.starts_with("https://") || is_loopback_http(url)) {
                out.push((
                    field,
                    format!("{url:?} must be an https:// URL (http:// only on a loopback host)"),
                ));
            }
        }
        if !self.redirect_url.ends_with("/auth/oidc/callback") {
            out.push((
                "redirect_url",
                format!(
                    "{:?} must end with /auth/oidc/callback (the route that takes the provider's answer)",
                    self.redirect_url
                ),
            ));
        }
        if self.client_id.is_empty() {
            out.push(("client_id", "must not be empty".into()));
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            out.push(("scopes", "must include openid".into()));
        }
        if self.user_claim.is_empty() {
            out.push(("user_claim", "must not be empty".into()));
        }
        out
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

struct Pending {
    nonce: String,
    verifier: String,
    created: Instant,
}

/// A failed OIDC step: what to tell the caller (and the log).
#[derive(Debug)]
pub struct OidcFailure {
    /// Message naming what failed.
    pub message: String,
    /// The account (`user:<name>`) when known.
    pub account: Option<String>,
}

fn fail(message: impl Into<String>) -> OidcFailure {
    OidcFailure {
        message: message.into(),
        account: None,
    }
}

/// The OIDC relying party of one control plane.
pub struct Oidc {
    cfg: OidcConfig,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    discovery: tokio::sync::Mutex<Option<Discovery>>,
    pending: Mutex<HashMap<String, Pending>>,
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn b64url_decode(s: &str, what: &str) -> Result<Vec<u8>, OidcFailure> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|e| fail(format!("{what} is not base64url: {e}")))
}

/// Percent-encodes a query or form value (everything but RFC 3986 unreserved characters).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

impl Oidc {
    /// A relying party for `cfg` (checked with [`OidcConfig::check`]); `https://`
    /// endpoints are verified against the system's trusted roots.
    pub fn new(cfg: OidcConfig) -> Result<Oidc, String> {
        let tls = weir_tls::TlsClientSettings::default()
            .load("oidc", |p: &str| std::path::PathBuf::from(p))
            .map_err(|e| e.to_string())?;
        let connector = tls.https_connector(weir_tls::HttpVersions::Http1And2);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        Ok(Oidc {
            cfg,
            client,
            discovery: tokio::sync::Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OidcConfig {
        &self.cfg
    }

    async fn request(
        &self,
        req: http::Request<Full<Bytes>>,
        what: &str,
    ) -> Result<(StatusCode, Bytes), OidcFailure> {
        let uri = req.uri().to_string();
        let resp = tokio::time::timeout(PROVIDER_TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| {
                fail(format!(
                    "{what} {uri}: no answer within {PROVIDER_TIMEOUT:?}"
                ))
            })?
            .map_err(|e| fail(format!("{what} {uri}: {e}")))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| fail(format!("{what} {uri}: reading the answer: {e}")))?
            .to_bytes();
        Ok((status, body))
    }

    async fn get_json(&self, url: &str, what: &str) -> Result<Value, OidcFailure> {
        let req = http::Request::get(url)
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| fail(format!("{what} {url}: {e}")))?;
        let (status, body) = self.request(req, what).await?;
        if !status.is_success() {
            return Err(fail(format!("{what} {url}: HTTP {status}")));
        }
        serde_json::from_slice(&body).map_err(|e| fail(format!("{what} {url}: not JSON: {e}")))
    }

    async fn discovery(&self) -> Result<Discovery, OidcFailure> {
        let mut cached = self.discovery.lock().await;
        if let Some(d) = cached.as_ref() {
            return Ok(d.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.cfg.issuer.trim_end_matches('/')
        );
        let v = self.get_json(&url, "OIDC discovery").await?;
        let d: Discovery =
            serde_json::from_value(v).map_err(|e| fail(format!("OIDC discovery {url}: {e}")))?;
        if d.issuer != self.cfg.issuer {
            return Err(fail(format!(
                "OIDC discovery {url}: issuer {:?} is not the configured {:?}",
                d.issuer, self.cfg.issuer
            )));
        }
        *cached = Some(d.clone());
        Ok(d)
    }

    /// Starts a login: the provider's authorization URL and the `state` to bind to the
    /// browser.
    pub async fn begin(&self) -> Result<(String, String), OidcFailure> {
        let d = self.discovery().await?;
        let state = b64url(&crate::users::random_secret(32));
        let nonce = b64url(&crate::users::random_secret(32));
        let verifier = b64url(&crate::users::random_secret(32));
        let challenge = b64url(&Sha256::digest(verifier.as_bytes()));
        {
            let mut pending = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.retain(|_, p| p.created.elapsed() < PENDING_TTL);
            if pending.len() >= MAX_PENDING {
                return Err(fail(format!(
                    "too many sign-ins in progress ({MAX_PENDING}); try again in a few minutes"
                )));
            }
            pending.insert(
                state.clone(),
                Pending {
                    nonce: nonce.clone(),
                    verifier,
                    created: Instant::now(),
                },
            );
        }
        let sep = if d.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!(
            "{}{sep}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
            d.authorization_endpoint,
            url_encode(&self.cfg.client_id),
            url_encode(&self.cfg.redirect_url),
            url_encode(&self.cfg.scopes.join(" ")),
            state,
            nonce,
            challenge,
        );
        Ok((url, state))
    }

    /// Finishes a login from the callback's query and the browser's state cookie: the
    /// Weir user name the provider vouched for.
    pub async fn finish(
        &self,
        query: &HashMap<String, String>,
        cookie_state: Option<&str>,
    ) -> Result<String, OidcFailure> {
        if let Some(e) = query.get("error") {
            let desc = query.get("error_description").map_or("", String::as_str);
            return Err(fail(format!("the provider answered error {e:?} {desc:?}")));
        }
        let state = query
            .get("state")
            .ok_or_else(|| fail("callback without state"))?;
        let cookie_state = cookie_state
            .ok_or_else(|| fail(format!("no {STATE_COOKIE} cookie in the callback")))?;
        if !bool::from(state.as_bytes().ct_eq(cookie_state.as_bytes())) {
            return Err(fail(format!(
                "state does not match this browser's {STATE_COOKIE} cookie"
            )));
        }
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(state)
            .filter(|p| p.created.elapsed() < PENDING_TTL)
            .ok_or_else(|| fail("unknown, used or expired state"))?;
        let code = query
            .get("code")
            .ok_or_else(|| fail("callback without code"))?;
        let d = self.discovery().await?;
        let id_token = self.exchange(&d, code, &pending.verifier).await?;
        let claims = self.validate(&d, &id_token, &pending.nonce).await?;
        let name = claims
            .get(&self.cfg.user_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                fail(format!(
                    "the ID token has no string claim {:?} (user_claim)",
                    self.cfg.user_claim
                ))
            })?;
        crate::users::check_name(name).map_err(|e| {
            fail(format!(
                "the ID token's {:?} is not a Weir user name: {e}",
                self.cfg.user_claim
            ))
        })?;
        Ok(name.to_string())
    }

    async fn exchange(
        &self,
        d: &Discovery,
        code: &str,
        verifier: &str,
    ) -> Result<String, OidcFailure> {
        let mut form = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
            url_encode(code),
            url_encode(&self.cfg.redirect_url),
            url_encode(verifier)
        );
        let mut req = http::Request::post(&d.token_endpoint)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json");
        match &self.cfg.client_secret {
            Some(secret) => {
                // RFC 6749 2.3.1: id and secret form-encoded, then Basic.
                let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    url_encode(&self.cfg.client_id),
                    url_encode(secret)
                ));
                req = req.header(header::AUTHORIZATION, format!("Basic {basic}"));
            }
            None => form.push_str(&format!("&client_id={}", url_encode(&self.cfg.client_id))),
        }
        let req = req
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| fail(format!("OIDC token request: {e}")))?;
        let (status, body) = self.request(req, "OIDC token request").await?;
        let v: Value = serde_json::from_slice(&body).map_err(|e| {
            fail(format!(
                "OIDC token endpoint {}: HTTP {status}, not JSON: {e}",
                d.token_endpoint
            ))
        })?;
        if !status.is_success() {
            return Err(fail(format!(
                "OIDC token endpoint {} refused the code: HTTP {status}, error {:?} {:?}",
                d.token_endpoint,
                v.get("error").and_then(Value::as_str).unwrap_or(""),
                v.get("error_description")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            )));
        }
        v.get("id_token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| fail("the token endpoint's answer has no id_token"))
    }

    /// Checks the ID token's signature against the provider's JWKS and its claims; the
    /// claims.
    async fn validate(
        &self,
        d: &Discovery,
        token: &str,
        nonce: &str,
    ) -> Result<serde_json::Map<String, Value>, OidcFailure> {
        let parts: Vec<&str> = token.split('.').collect();
        let [h, p, s] = parts[..] else {
            return Err(fail("the ID token is not a compact JWS (three parts)"));
        };
        let header: Value = serde_json::from_slice(&b64url_decode(h, "the ID token's header")?)
            .map_err(|e| fail(format!("the ID token's header is not JSON: {e}")))?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let kid = header.get("kid").and_then(Value::as_str);
        let sig = b64url_decode(s, "the ID token's signature")?;
        let signed = format!("{h}.{p}");
        let jwks = self.get_json(&d.jwks_uri, "OIDC JWKS").await?;
        let keys = jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| fail(format!("OIDC JWKS {}: no keys array", d.jwks_uri)))?;
        let kty = match alg {
            "RS256" => "RSA",
            "ES256" => "EC",
            other => {
                return Err(fail(format!(
                    "the ID token's alg {other:?} is not accepted (RS256 or ES256)"
                )))
            }
        };
        let candidates: Vec<&Value> = keys
            .iter()
            .filter(|k| k.get("kty").and_then(Value::as_str) == Some(kty))
            .filter(|k| kid.is_none() || k.get("kid").and_then(Value::as_str) == kid)
            .filter(|k| {
                k.get("use")
                    .and_then(Value::as_str)
                    .is_none_or(|u| u == "sig")
            })
            .collect();
        if candidates.is_empty() {
            return Err(fail(format!(
                "OIDC JWKS {} has no {kty} signing key with kid {kid:?}",
                d.jwks_uri
            )));
        }
        let field = |k: &Value, f: &str| -> Result<Vec<u8>, OidcFailure> {
            let v = k
                .get(f)
                .and_then(Value::as_str)
                .ok_or_else(|| fail(format!("a JWKS key has no {f:?}")))?;
            b64url_decode(v, &format!("the JWKS key's {f:?}"))
        };
        let mut verified = false;
        for k in candidates {
            let ok = if alg == "RS256" {
                let key = ring::signature::RsaPublicKeyComponents {
                    n: field(k, "n")?,
                    e: field(k, "e")?,
                };
                key.verify(
                    &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                    signed.as_bytes(),
                    &sig,
                )
                .is_ok()
            } else {
                if k.get("crv").and_then(Value::as_str) != Some("P-256") {
                    continue;
                }
                let mut point = vec![4u8];
                point.extend(field(k, "x")?);
                point.extend(field(k, "y")?);
                ring::signature::UnparsedPublicKey::new(
                    &ring::signature::ECDSA_P256_SHA256_FIXED,
                    &point,
                )
                .verify(signed.as_bytes(), &sig)
                .is_ok()
            };
            if ok {
                verified = true;
                break;
            }
        }
        if !verified {
            return Err(fail(format!(
                "the ID token's {alg} signature does not verify against the provider's keys"
            )));
        }
        let claims: serde_json::Map<String, Value> =
            serde_json::from_slice(&b64url_decode(p, "the ID token's payload")?)
                .map_err(|e| fail(format!("the ID token's payload is not a JSON object: {e}")))?;
        let iss = claims.get("iss").and_then(Value::as_str);
        if iss != Some(self.cfg.issuer.as_str()) {
            return Err(fail(format!(
                "the ID token's iss {iss:?} is not the configured issuer {:?}",
                self.cfg.issuer
            )));
        }
        let auds: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !auds.contains(&self.cfg.client_id.as_str()) {
            return Err(fail(format!(
                "the ID token's aud {auds:?} does not include client_id {:?}",
                self.cfg.client_id
            )));
        }
        if auds.len() > 1
            && claims.get("azp").and_then(Value::as_str) != Some(self.cfg.client_id.as_str())
        {
            return Err(fail(
                "the ID token has several audiences and azp is not this client",
            ));
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| fail("the ID token has no numeric exp"))?;
        let now = crate::store::now_secs();
        if exp + LEEWAY_SECS <= now {
            return Err(fail(format!("the ID token expired {} s ago", now - exp)));
        }
        let got = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if !bool::from(got.as_bytes().ct_eq(nonce.as_bytes())) {
            return Err(fail(
                "the ID token's nonce is not the one sent with this login",
            ));
        }
        Ok(claims)
    }
}

fn state_cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{STATE_COOKIE}={value}; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn not_configured() -> Response {
    (
        StatusCode::NOT_FOUND,
        "OIDC sign-in is not configured (extensions.control_plane.oidc)",
    )
        .into_response()
}

/// `GET /auth/oidc/login`: 303 to the provider.
pub async fn login(State(state): State<ApiState>) -> Response {
    let Some(oidc) = state.control.oidc() else {
        return not_configured();
    };
    match oidc.begin().await {
        Ok((url, st)) => {
            let mut resp = StatusCode::SEE_OTHER.into_response();
            let h = resp.headers_mut();
            match HeaderValue::from_str(&url) {
                Ok(v) => h.insert(header::LOCATION, v),
                Err(_) => {
                    return (StatusCode::BAD_GATEWAY, "bad authorization URL").into_response()
                }
            };
            h.insert(
                header::SET_COOKIE,
                state_cookie(&st, PENDING_TTL.as_secs(), state.control.secure_cookies()),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => {
            tracing::warn!(error = %e.message, "OIDC login cannot start");
            (StatusCode::BAD_GATEWAY, e.message).into_response()
        }
    }
}

/// `GET /auth/oidc/callback`: the provider's answer; 303 to `/` with the session cookie,
/// 401 naming what failed, 429 while locked out.
pub async fn callback(
    State(state): State<ApiState>,
    Query(query): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    let Some(oidc) = state.control.oidc() else {
        return not_configured();
    };
    let client = crate::signin::client_of(req.extensions());
    let guard = state.control.guard();
    if let Err(l) = guard.check(client, None) {
        return crate::api::AuthFailure::Locked(l).into_response();
    }
    let cookie_state = cookie_value(req.headers(), STATE_COOKIE);
    let issuer = oidc.config().issuer.clone();
    let r = match oidc.finish(&query, cookie_state.as_deref()).await {
        Ok(name) => {
            let account = format!("user:{name}");
            if let Err(l) = guard.check(client, Some(&account)) {
                return crate::api::AuthFailure::Locked(l).into_response();
            }
            let control = state.control.clone();
            let client_s = crate::guard::client_str(client);
            let n = name.clone();
            let signed = tokio::task::spawn_blocking(move || {
                crate::audit::with_client(&client_s, || control.store().sign_in_oidc(&n, &issuer))
            })
            .await;
            match signed {
                Ok(Ok(v)) => {
                    guard.succeeded(&account);
                    Ok(v)
                }
                Ok(Err(UserError::Refused(m))) => Err(OidcFailure {
                    message: m.to_string(),
                    account: Some(account),
                }),
                Ok(Err(e)) => return crate::signin::user_error(e).into_response(),
                Err(e) => {
                    return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
                }
            }
        }
        Err(e) => Err(e),
    };
    let secure = state.control.secure_cookies();
    match r {
        Ok((session, _role)) => {
            let mut resp = StatusCode::SEE_OTHER.into_response();
            let h = resp.headers_mut();
            h.insert(header::LOCATION, HeaderValue::from_static("/"));
            h.append(
                header::SET_COOKIE,
                crate::signin::cookie(&session, SESSION_TTL_SECS, secure),
            );
            h.append(header::SET_COOKIE, state_cookie("", 0, secure));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => {
            tracing::warn!(client = %crate::guard::client_str(client), error = %e.message, "OIDC sign-in refused");
            guard.failed(client, e.account.as_deref(), "bad_oidc");
            state
                .control
                .audit_auth_failure(client, e.account.as_deref(), "bad_oidc");
            let mut resp = (
                StatusCode::UNAUTHORIZED,
                format!("OIDC sign-in refused: {}", e.message),
            )
                .into_response();
            resp.headers_mut()
                .append(header::SET_COOKIE, state_cookie("", 0, secure));
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(issuer: &str, redirect: &str) -> OidcConfig {
        OidcConfig {
            issuer: issuer.into(),
            client_id: "weir".into(),
            client_secret: None,
            redirect_url: redirect.into(),
            scopes: default_scopes(),
            user_claim: default_user_claim(),
        }
    }

    #[test]
    fn config_check_names_bad_fields() {
        assert!(cfg(
            "https://id.example",
            "https://weir.example/auth/oidc/callback"
        )
        .check()
        .is_empty());
        assert!(cfg(
            "http://127.0.0.1:9000",
            "http://localhost:8080/auth/oidc/callback"
        )
        .check()
        .is_empty());
        let bad = cfg("http://id.example", "https://weir.example/elsewhere").check();
        let fields: Vec<_> = bad.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, vec!["issuer", "redirect_url"], "{bad:?}");
        let mut c = cfg("https://id.example", "https://w.example/auth/oidc/callback");
        c.scopes = vec!["profile".into()];
        assert_eq!(c.check()[0].0, "scopes");
    }

    #[test]
    fn url_encode_keeps_unreserved_only() {
        assert_eq!(url_encode("a b&c=d/é~"), "a%20b%26c%3Dd%2F%C3%A9~");
    }
}
