//! A small HTTP/1.1 + HTTP/2 server loop for the receivers of legacy trace formats (`zipkin`,
//! `jaeger` thrift_http): bind an endpoint as the Collector does, accept (optionally over
//! TLS), answer each request with a handler, and stop gracefully at shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use weir_api::{ComponentId, StartError};

/// What answers one request.
pub(crate) type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>
        + Send
        + Sync,
>;

/// Loads a receiver's server TLS settings (`None`: plain), files relative to `base_dir`;
/// errors name `field` (`receivers.<id>...tls`).
pub(crate) fn load_tls(
    id: &ComponentId,
    base_dir: &std::path::Path,
    field: &str,
    tls: Option<&weir_tls::TlsServerSettings>,
    alpn: weir_tls::Alpn,
) -> Result<Option<weir_tls::ServerTls>, StartError> {
    let Some(tls) = tls else {
        return Ok(None);
    };
    tls.load(field, |p| base_dir.join(p), alpn)
        .map(Some)
        .map_err(|e| StartError::new(id, e.to_string(), e))
}

/// Binds `endpoint` (`host:port`; an empty host means every interface). A host name
/// listens on one of its addresses, IPv4 first, as the Collector does.
pub(crate) async fn bind(
    id: &ComponentId,
    what: &str,
    endpoint: &str,
) -> Result<TcpListener, StartError> {
    let failed = |e: std::io::Error| {
        StartError::new(id, format!("cannot listen for {what} on {endpoint}"), e)
    };
    let address = match endpoint.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => endpoint.to_string(),
    };
    let mut addresses: Vec<SocketAddr> = tokio::net::lookup_host(&address)
        .await
        .map_err(failed)?
        .collect();
    addresses.sort_by_key(|a| !a.is_ipv4());
    let mut last_error = None;
    for a in addresses {
        match TcpListener::bind(a).await {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(failed(last_error.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the host name resolves to no address",
        )
    })))
}

/// Serves `handler` on `listener` until `shutdown`, then lets open requests finish.
pub(crate) fn serve(
    listener: TcpListener,
    tls: Option<weir_tls::ServerTls>,
    shutdown: CancellationToken,
    handler: Handler,
    what: &'static str,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Some(std::time::Duration::from_secs(60)));
        builder.http2().timer(TokioTimer::new());
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = shutdown.cancelled() => break,
            };
            let stream = match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    stream
                }
                Err(e) => {
                    tracing::warn!(error = %e, "{what}: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let handler = handler.clone();
            let service = service_fn(move |req: Request<Incoming>| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            if let Some(tls) = &tls {
                let (tls, builder, watcher) = (tls.clone(), builder.clone(), graceful.watcher());
                tokio::spawn(async move {
                    let stream = match tls.accept(stream).await {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::debug!(error = %e, "{what}: TLS handshake failed");
                            return;
                        }
                    };
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(connection.into_owned()).await {
                        tracing::debug!(error = %e, "{what}: connection ended with an error");
                    }
                });
                continue;
            }
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let connection = graceful.watch(connection.into_owned());
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "{what}: connection ended with an error");
                }
            });
        }
        drop(listener);
        graceful.shutdown().await;
    })
}

/// A response with a body and a content type.
pub(crate) fn respond(
    status: http::StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}
