//! Small HTTP endpoints the engine runs itself: Weir's own metrics (`/metrics`, Prometheus
//! text) and the plumbing the health check extension shares.

use std::net::SocketAddr;

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use weir_api::{Exposition, Telemetry};

/// A running HTTP server that stops on [`HttpServer::stop`].
pub struct HttpServer {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds `address` (`host:port`, host names resolved) and serves `router` on it.
    pub async fn start(address: &str, router: Router) -> std::io::Result<HttpServer> {
        let listener = TcpListener::bind(address).await?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, %local_addr, "HTTP server failed");
            }
        });
        Ok(HttpServer {
            local_addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections and waits for open requests to finish.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// The OpenMetrics text content type that prometheus-client writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `telemetry` at `http://address/metrics`, the Collector's names written as
/// `exposition` says.
pub async fn start_metrics(
    address: &str,
    telemetry: Telemetry,
    exposition: Exposition,
) -> std::io::Result<HttpServer> {
    let exposition = std::sync::Arc::new(exposition);
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let telemetry = telemetry.clone();
            let exposition = exposition.clone();
            async move {
                (
                    [(CONTENT_TYPE, OPENMETRICS)],
                    telemetry.encode_with(&exposition),
                )
            }
        }),
    );
    HttpServer::start(address, router).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A minimal HTTP/1.0 GET, enough to test our own endpoints without a client crate.
    pub async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_metrics_text() {
        let t = Telemetry::new();
        t.counter("weir_test_items", "help", &[("k", "v".into())])
            .inc_by(7);
        let mut server = start_metrics("127.0.0.1:0", t, Exposition::default())
            .await
            .unwrap();
        let response = get(server.local_addr(), "/metrics").await;
        assert!(
            response.starts_with("HTTP/1.0 200 OK") || response.starts_with("HTTP/1.1 200 OK"),
            "{response}"
        );
        assert!(
            response.contains("weir_test_items_total{k=\"v\"} 7"),
            "{response}"
        );
        assert!(
            response.contains("application/openmetrics-text"),
            "{response}"
        );
        let response = get(server.local_addr(), "/other").await;
        assert!(response.contains(" 404 "), "{response}");
        server.stop().await;
    }
}
