//! Cross-origin requests (CORS) for OTLP/HTTP from browsers: which origins may send, and
//! the answer to a preflight `OPTIONS`.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;

use bytes::Bytes;

use super::config::CorsSettings;

/// Headers a browser may always send (the CORS-safelisted ones plus what OTLP needs).
const ALWAYS_ALLOWED_HEADERS: [&str; 7] = [
    "accept",
    "accept-language",
    "content-language",
    "content-type",
    "content-encoding",
    "x-requested-with",
    "origin",
];

/// The compiled `cors` settings.
#[derive(Debug, Clone)]
pub struct CorsPolicy {
    origins: Vec<String>,
    headers: Vec<String>,
    any_header: bool,
    exposed: Option<HeaderValue>,
    max_age: Option<u64>,
}

impl CorsPolicy {
    /// Compiles the settings; `None` when no origin is allowed (CORS off, as in the collector).
    pub fn new(settings: &CorsSettings) -> Option<CorsPolicy> {
        if settings.allowed_origins.is_empty() {
            return None;
        }
        Some(CorsPolicy {
            origins: settings.allowed_origins.clone(),
            headers: settings
                .allowed_headers
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            any_header: settings.allowed_headers.iter().any(|h| h == "*"),
            exposed: (!settings.exposed_headers.is_empty())
                .then(|| HeaderValue::from_str(&settings.exposed_headers.join(", ")).ok())
                .flatten(),
            max_age: settings.max_age,
        })
    }

    /// The request's `Origin` when it is allowed.
    pub fn allowed_origin<'a>(&self, headers: &'a HeaderMap) -> Option<&'a HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|pattern| wildcard_match(pattern, text))
            .then_some(origin)
    }

    /// The `Access-Control-Expose-Headers` value for answers to allowed origins, if any.
    pub fn exposed_headers(&self) -> Option<&HeaderValue> {
        self.exposed.as_ref()
    }

    /// Whether a request is a preflight this policy answers.
    pub fn is_preflight(method: &http::Method, headers: &HeaderMap) -> bool {
        method == http::Method::OPTIONS
            && headers.contains_key(header::ORIGIN)
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// The answer to a preflight: 204, with the allow headers only when the origin, method
    /// and headers asked for are all allowed (otherwise the browser blocks the request).
    pub fn preflight(&self, headers: &HeaderMap) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        let out = response.headers_mut();
        out.insert(
            header::VARY,
            HeaderValue::from_static(
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            ),
        );
        let Some(origin) = self.allowed_origin(headers) else {
            return response;
        };
        let method_ok = headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .is_some_and(|m| m.as_bytes().eq_ignore_ascii_case(b"POST"));
        let requested: Vec<String> = headers
            .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let headers_ok = self.any_header
            || requested
                .iter()
                .all(|h| ALWAYS_ALLOWED_HEADERS.contains(&h.as_str()) || self.headers.contains(h));
        if !method_ok || !headers_ok {
            return response;
        }
        let origin = origin.clone();
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        out.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        if !requested.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&requested.join(", ")) {
                out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
            }
        }
        if let Some(age) = self.max_age {
            out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
        }
        response
    }
}

/// Matches `text` against `pattern`, where each `*` stands for any run of characters.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", "https://a.b"));
        assert!(wildcard_match(
            "https://*.example.com",
            "https://app.example.com"
        ));
        assert!(!wildcard_match(
            "https://*.example.com",
            "https://example.com"
        ));
        assert!(!wildcard_match(
            "https://*.example.com",
            "http://app.example.com"
        ));
        assert!(wildcard_match(
            "http://localhost:*",
            "http://localhost:3000"
        ));
        assert!(wildcard_match("https://exact.io", "https://exact.io"));
        assert!(!wildcard_match("https://exact.io", "https://exact.io.evil"));
        assert!(wildcard_match("a*b*c", "aXbYc"));
        assert!(!wildcard_match("a*bc*c", "abc"));
    }
}
