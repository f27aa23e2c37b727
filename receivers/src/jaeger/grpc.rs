//! `grpc`: the `jaeger.api_v2.CollectorService/PostSpans` method, served as raw bytes and
//! decoded from the Jaeger protobuf model.

use std::sync::Arc;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tonic::codegen::{Body, BoxFuture, Context, Poll, Service, StdError};
use tonic::server::{NamedService, UnaryService};
use weir_api::grpc_raw::RawRequestCodec;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::{Batch, Payload, Signal};

use super::{convert, proto};
use crate::otlp::ingest::{Ingest, Transport};
use crate::otlp::status::RequestError;

/// Decodes a gRPC `PostSpansRequest` into OTLP.
pub fn decode_grpc(body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    proto::decode_post_spans(body).map(|b| convert::proto_to_otlp(vec![b]))
}

/// `jaeger.api_v2.CollectorService` as a tower service tonic's router serves.
#[derive(Clone)]
struct CollectorService {
    ingest: Arc<Ingest>,
    max_recv_msg_size: usize,
}

impl NamedService for CollectorService {
    const NAME: &'static str = "jaeger.api_v2.CollectorService";
}

impl<B> Service<http::Request<B>> for CollectorService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            if req.uri().path() != "/jaeger.api_v2.CollectorService/PostSpans" {
                return Ok(tonic::Status::unimplemented("unknown method").into_http());
            }
            let mut grpc =
                tonic::server::Grpc::new(RawRequestCodec::<proto::PostSpansResponse>::default())
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                    .max_decoding_message_size(this.max_recv_msg_size);
            Ok(grpc.unary(PostSpans(this.ingest.clone()), req).await)
        })
    }
}

struct PostSpans(Arc<Ingest>);

impl UnaryService<Bytes> for PostSpans {
    type Response = proto::PostSpansResponse;
    type Future = BoxFuture<tonic::Response<proto::PostSpansResponse>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let ingest = self.0.clone();
        Box::pin(async move {
            let bytes = request.into_inner();
            ingest.count_bytes(Transport::Grpc, Signal::Traces, bytes.len());
            let outcome = async {
                let mut share = ingest.budget.share();
                share.take(bytes.len())?;
                let request = decode_grpc(&bytes).map_err(RequestError::Malformed)?;
                let delivered = ingest
                    .deliver(Transport::Grpc, Batch::new(Payload::Traces(request)))
                    .await;
                drop(share);
                delivered
            }
            .await;
            match outcome {
                Ok(()) => Ok(tonic::Response::new(proto::PostSpansResponse {})),
                Err(e) => {
                    ingest.count_refused_request(Transport::Grpc, Signal::Traces);
                    tracing::debug!(error = %e, "Jaeger gRPC request not taken");
                    Err(e.grpc_status())
                }
            }
        })
    }
}

pub(super) fn serve_grpc(
    listener: tokio::net::TcpListener,
    tls: Option<weir_tls::ServerTls>,
    ingest: Arc<Ingest>,
    max_recv_msg_size: usize,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let router = tonic::transport::Server::builder().add_service(CollectorService {
        ingest,
        max_recv_msg_size,
    });
    tokio::spawn(async move {
        let served = match tls {
            Some(tls) => {
                router
                    .serve_with_incoming_shutdown(
                        tls.incoming(listener),
                        shutdown.cancelled_owned(),
                    )
                    .await
            }
            None => {
                let incoming =
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
                router
                    .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                    .await
            }
        };
        if let Err(e) = served {
            tracing::error!(error = %e, "Jaeger gRPC server failed");
        }
    })
}
