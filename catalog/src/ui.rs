//! The control plane's web UI: static assets compiled into the binary (`include_str!`, no
//! build step, nothing fetched from elsewhere) and served without authentication at `/`
//! and `/ui/{file}`. The assets hold no data; people enrol and sign in on the page with
//! password + TOTP (docs/SECURITY.md), and its scripts call the authenticated `/api/v1`
//! with the HTTP-only session cookie the sign-in set (they never see a credential).
//!
//! ```yaml
//! extensions:
//!   control_plane:
//!     endpoint: localhost:8080   # open http://localhost:8080/ in a browser
//! ```

use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file: its name under `/ui/`, media type and contents.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        media_type: "text/html; charset=utf-8",
        body: include_str!("../ui/index.html"),
    },
    Asset {
        name: "app.css",
        media_type: "text/css; charset=utf-8",
        body: include_str!("../ui/app.css"),
    },
    Asset {
        name: "app.js",
        media_type: JS,
        body: include_str!("../ui/app.js"),
    },
    Asset {
        name: "pages.js",
        media_type: JS,
        body: include_str!("../ui/pages.js"),
    },
    Asset {
        name: "api.js",
        media_type: JS,
        body: include_str!("../ui/api.js"),
    },
    Asset {
        name: "dom.js",
        media_type: JS,
        body: include_str!("../ui/dom.js"),
    },
    Asset {
        name: "charts.js",
        media_type: JS,
        body: include_str!("../ui/charts.js"),
    },
];

/// Scripts, styles and API calls only from this origin; no framing (clickjacking).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The names of the embedded files (as served under `/ui/`).
pub fn asset_names() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|a| a.name)
}

fn serve(asset: &Asset) -> Response {
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.media_type),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ),
        // Assets change with the binary; revalidating is cheap on the same host.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, asset.body).into_response()
}

async fn index() -> Response {
    serve(&ASSETS[0])
}

async fn file(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => serve(a),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no UI file {name:?}"),
        )
            .into_response(),
    }
}

/// Routes of the UI (no authentication: the files hold no data).
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/{name}", get(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_scripts_import_is_embedded() {
        let re = regex::Regex::new(r#"from "\./([a-z]+\.js)""#).unwrap();
        for a in ASSETS {
            for cap in re.captures_iter(a.body) {
                assert!(
                    asset_names().any(|n| n == &cap[1]),
                    "{} imports {} which is not embedded",
                    a.name,
                    &cap[1]
                );
            }
        }
        let index = ASSETS[0].body;
        for link in ["/ui/app.css", "/ui/app.js"] {
            assert!(index.contains(link), "index.html lacks {link}");
        }
    }

    #[test]
    fn nothing_is_loaded_from_another_origin() {
        for a in ASSETS {
            // The SVG namespace is a name, not something fetched.
            let body = a.body.replace("\"http://www.w3.org/2000/svg\"", "");
            for needle in ["http://", "https://", "//cdn", "@import", "fonts.g"] {
                assert!(
                    !body.contains(needle),
                    "{} mentions {needle:?}: the UI must load nothing from elsewhere",
                    a.name
                );
            }
        }
    }
}
