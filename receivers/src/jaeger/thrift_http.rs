//! `thrift_http`: `POST /api/traces` with a Thrift-binary `Batch`, decoded and handed on as
//! OTLP traces.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::{Batch, Payload, Signal};

use super::{convert, from_thrift};
use crate::http_server::respond;
use crate::otlp::body;
use crate::otlp::body::ContentEncoding;
use crate::otlp::ingest::{Ingest, Transport};
use crate::otlp::status::RequestError;

/// Decodes a Thrift binary `Batch` (the thrift_http body) into OTLP.
pub fn decode_thrift_http(body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    from_thrift::decode_binary_batch(body).map(convert::thrift_to_otlp)
}

pub(super) struct HttpState {
    pub(super) ingest: Arc<Ingest>,
    pub(super) max_body_size: usize,
    pub(super) include_metadata: bool,
}

fn text(status: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    let mut m = message.into();
    m.push('\n');
    respond(status, "text/plain; charset=utf-8", m)
}

pub(super) async fn handle_http(
    state: &HttpState,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if req.uri().path() != "/api/traces" {
        return text(StatusCode::NOT_FOUND, "404 page not found");
    }
    if req.method() != Method::POST {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "405 method not allowed, supported: [POST]",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if !matches!(
        media.as_str(),
        "application/x-thrift" | "application/vnd.apache.thrift.binary"
    ) {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("415 unsupported media type {media:?}, supported: [application/x-thrift, application/vnd.apache.thrift.binary]"),
        );
    }
    match receive_http(state, req).await {
        Ok(()) => respond(StatusCode::ACCEPTED, "text/plain; charset=utf-8", ""),
        Err(e) => {
            state
                .ingest
                .count_refused_request(Transport::Http, Signal::Traces);
            tracing::debug!(error = %e, "Jaeger Thrift HTTP request not taken");
            let mut r = text(e.http_status(), e.to_string());
            if let Some(secs) = e.retry_after_secs() {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            r
        }
    }
}

async fn receive_http(state: &HttpState, req: Request<Incoming>) -> Result<(), RequestError> {
    let encoding = ContentEncoding::parse(
        req.headers()
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap_or("(not text)")),
    )
    .map_err(RequestError::Malformed)?;
    let content_length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let metadata = state.include_metadata.then(|| {
        Arc::new(
            req.headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect::<Vec<_>>(),
        )
    });
    let ingest = &state.ingest;
    let limit = state.max_body_size;
    let mut share = ingest.budget.share();
    let raw = body::read_limited(req.into_body(), content_length, limit, &mut share).await?;
    ingest.count_bytes(Transport::Http, Signal::Traces, raw.len());
    let (bytes, share) = body::decompress(encoding, raw, limit, share).await?;
    let request = decode_thrift_http(&bytes).map_err(RequestError::Malformed)?;
    let mut batch = Batch::new(Payload::Traces(request));
    batch.context.metadata = metadata;
    let delivered = ingest.deliver(Transport::Http, batch).await;
    drop(share);
    delivered
}
