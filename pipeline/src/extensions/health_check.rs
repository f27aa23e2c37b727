//! The `health_check` extension: an HTTP endpoint saying whether Weir is ready.
//!
//! ```yaml
//! extensions:
//!   health_check:
//!     endpoint: localhost:13133
//!     path: /
//! service:
//!   extensions: [health_check]
//! ```
//!
//! `GET path` answers 200 `{"status":"Server available","upSince":...,"uptime":...}` while
//! every component is started and the service is not shutting down, and 503
//! `{"status":"Server not available",...}` otherwise, as the collector's extension does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use weir_api::{
    parse_component_config, BuildContext, BuildError, Component, ComponentId, ConfigErrors,
    ExtensionConfig, ExtensionFactory, StartError,
};

use crate::metrics_server::HttpServer;

/// `extensions.health_check` as written.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// `host:port` to listen on. Default: localhost:13133.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// URL path answered. Default: `/`.
    #[serde(default = "default_path")]
    pub path: String,
    /// Fixed bodies instead of the JSON status. Default: unset.
    #[serde(default)]
    pub response_body: Option<ResponseBody>,
    /// The collector's deprecated pipeline check. Default: unset. Accepted, ignored.
    #[serde(default)]
    pub check_collector_pipeline: Option<Value>,
}

/// Custom bodies for the two states.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseBody {
    /// Body when ready. Default: the JSON status.
    pub healthy: String,
    /// Body when not ready. Default: the JSON status.
    pub unhealthy: String,
}

fn default_endpoint() -> String {
    "localhost:13133".to_string()
}
fn default_path() -> String {
    "/".to_string()
}

/// Factory of the `health_check` extension.
pub struct HealthCheckFactory;

impl ExtensionFactory for HealthCheckFactory {
    fn parse(&self, config: &Value, path: &str) -> Result<Box<dyn ExtensionConfig>, ConfigErrors> {
        let cfg: HealthCheckConfig = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        if !cfg.path.starts_with('/') {
            errors.push(
                format!("{path}.path"),
                format!("the path must start with '/', found {:?}", cfg.path),
            );
        }
        errors.into_result(Box::new(cfg) as Box<dyn ExtensionConfig>)
    }
}

impl ExtensionConfig for HealthCheckConfig {
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Component>, BuildError> {
        Ok(Arc::new(HealthCheck {
            id: ctx.id.clone(),
            config: self.clone(),
            ready: ctx.ready.clone(),
            server: Mutex::new(None),
        }))
    }
}

/// The running extension.
pub struct HealthCheck {
    id: ComponentId,
    config: HealthCheckConfig,
    ready: Arc<AtomicBool>,
    server: Mutex<Option<HttpServer>>,
}

struct State {
    ready: Arc<AtomicBool>,
    up_since: SystemTime,
    started: Instant,
    body: Option<ResponseBody>,
}

fn answer(
    state: &State,
) -> (
    StatusCode,
    [(axum::http::HeaderName, &'static str); 1],
    String,
) {
    let ready = state.ready.load(Ordering::SeqCst);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if let Some(body) = &state.body {
        let text = if ready {
            body.healthy.clone()
        } else {
            body.unhealthy.clone()
        };
        return (status, [(CONTENT_TYPE, "text/plain")], text);
    }
    let json = if ready {
        serde_json::json!({
            "status": "Server available",
            "upSince": humantime::format_rfc3339_nanos(state.up_since).to_string(),
            "uptime": format!("{:.9}s", state.started.elapsed().as_secs_f64()),
        })
    } else {
        serde_json::json!({"status": "Server not available", "upSince": "0001-01-01T00:00:00Z", "uptime": ""})
    };
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        json.to_string(),
    )
}

#[async_trait]
impl Component for HealthCheck {
    async fn start(&self) -> Result<(), StartError> {
        let state = Arc::new(State {
            ready: self.ready.clone(),
            up_since: SystemTime::now(),
            started: Instant::now(),
            body: self.config.response_body.clone(),
        });
        let router = Router::new().route(
            &self.config.path,
            get(move || {
                let state = state.clone();
                async move { answer(&state) }
            }),
        );
        let server = HttpServer::start(&self.config.endpoint, router)
            .await
            .map_err(|e| {
                StartError::new(
                    &self.id,
                    format!("cannot listen on {}", self.config.endpoint),
                    e,
                )
            })?;
        tracing::info!(extension = %self.id, address = %server.local_addr(), path = %self.config.path, "health check listening");
        *self.server.lock().await = Some(server);
        Ok(())
    }

    async fn shutdown(&self) {
        if let Some(mut server) = self.server.lock().await.take() {
            server.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[test]
    fn defaults_and_errors() {
        let cfg: HealthCheckConfig =
            parse_component_config(&Value::Null, "extensions.health_check").unwrap();
        assert_eq!(
            (cfg.endpoint.as_str(), cfg.path.as_str()),
            ("localhost:13133", "/")
        );
        let err = HealthCheckFactory
            .parse(&json!({"path": "health"}), "extensions.health_check")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "extensions.health_check.path: the path must start with '/', found \"health\""
        );
        let err = HealthCheckFactory
            .parse(&json!({"endpont": "x"}), "extensions.health_check")
            .err()
            .unwrap();
        assert_eq!(err.0[0].path, "extensions.health_check.endpont");
        assert!(
            err.0[0].message.starts_with("unknown field `endpont`"),
            "{}",
            err.0[0].message
        );
    }

    #[tokio::test]
    async fn answers_200_when_ready_and_503_when_not() {
        let ready = Arc::new(AtomicBool::new(false));
        let check = HealthCheck {
            id: ComponentId::parse("health_check").unwrap(),
            config: HealthCheckConfig {
                endpoint: "127.0.0.1:0".into(),
                path: "/health".into(),
                response_body: None,
                check_collector_pipeline: None,
            },
            ready: ready.clone(),
            server: Mutex::new(None),
        };
        check.start().await.unwrap();
        let addr = check.server.lock().await.as_ref().unwrap().local_addr();
        let r = get(addr, "/health").await;
        assert!(r.starts_with("HTTP/1.0 503"), "{r}");
        assert!(r.ends_with("{\"status\":\"Server not available\",\"upSince\":\"0001-01-01T00:00:00Z\",\"uptime\":\"\"}"), "{r}");
        ready.store(true, Ordering::SeqCst);
        let r = get(addr, "/health").await;
        assert!(r.starts_with("HTTP/1.0 200"), "{r}");
        assert!(
            r.contains("{\"status\":\"Server available\",\"upSince\":\""),
            "{r}"
        );
        check.shutdown().await;
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
