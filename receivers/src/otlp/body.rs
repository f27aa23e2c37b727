//! Reading an OTLP/HTTP request body under the size limit and the in-flight byte budget,
//! and decompressing it without letting a small compressed body grow past the limit (a
//! "zip bomb" stops at the limit, not at the end of the stream).

use std::io::Read;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

use super::ingest::{budget_spent, BudgetShare};
use super::status::RequestError;

/// Decompressed bytes read per step (the budget is taken step by step).
const DECOMPRESS_CHUNK: usize = 64 * 1024;

/// Compressed bodies larger than this are decompressed on a blocking thread so a big body
/// does not hold up the other requests on the same runtime thread.
const INLINE_DECOMPRESS_MAX: usize = 256 * 1024;

/// A `Content-Encoding` the receiver decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    /// No encoding.
    Identity,
    /// `gzip` (also `x-gzip`).
    Gzip,
    /// `deflate` (zlib-wrapped, as HTTP defines it; raw deflate is accepted too).
    Deflate,
    /// `zstd`.
    Zstd,
}

impl ContentEncoding {
    /// Parses a `Content-Encoding` header value (absent: identity).
    pub fn parse(value: Option<&str>) -> Result<ContentEncoding, String> {
        let Some(v) = value else {
            return Ok(ContentEncoding::Identity);
        };
        match v.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Ok(ContentEncoding::Identity),
            "gzip" | "x-gzip" => Ok(ContentEncoding::Gzip),
            "deflate" => Ok(ContentEncoding::Deflate),
            "zstd" => Ok(ContentEncoding::Zstd),
            other => Err(format!(
                "unsupported Content-Encoding {other:?} (supported: gzip, zstd, deflate)"
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            ContentEncoding::Identity => "identity",
            ContentEncoding::Gzip => "gzip",
            ContentEncoding::Deflate => "deflate",
            ContentEncoding::Zstd => "zstd",
        }
    }
}

fn too_large(what: &str, limit: usize) -> RequestError {
    RequestError::TooLarge(format!(
        "{what} is larger than max_request_body_size ({limit} bytes)"
    ))
}

/// Reads the whole body, at most `limit` bytes, taking budget for each piece before it is
/// held (so a slow sender holds only what it has sent). A body of known size that cannot fit
/// in the budget now is turned away before any of it is read.
pub async fn read_limited<B>(
    mut body: B,
    content_length: Option<u64>,
    limit: usize,
    share: &mut BudgetShare,
) -> Result<Bytes, RequestError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    if let Some(len) = content_length {
        if len > limit as u64 {
            return Err(too_large("request body", limit));
        }
        if !share.would_fit(len) {
            return Err(budget_spent());
        }
    }
    let capacity = content_length.map_or(0, |l| l as usize);
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            RequestError::Malformed(format!("reading the request body failed: {e}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let held = first.as_ref().map_or(0, Bytes::len) + buf.len();
        if held + data.len() > limit {
            return Err(too_large("request body", limit));
        }
        share.take(data.len())?;
        // The common case, one data frame, is kept as it came, without a copy.
        match first.take() {
            None if buf.is_empty() => first = Some(data),
            Some(f) => {
                buf.reserve(capacity.max(f.len() + data.len()));
                buf.extend_from_slice(&f);
                buf.extend_from_slice(&data);
            }
            None => buf.extend_from_slice(&data),
        }
    }
    Ok(match first {
        Some(f) => f,
        None => buf.freeze(),
    })
}

/// Decompresses `body` (at most `limit` bytes out), taking budget for what it produces. The
/// share comes back with the bytes; on an error it is dropped, which gives its bytes back.
pub async fn decompress(
    encoding: ContentEncoding,
    body: Bytes,
    limit: usize,
    mut share: BudgetShare,
) -> Result<(Bytes, BudgetShare), RequestError> {
    if encoding == ContentEncoding::Identity {
        return Ok((body, share));
    }
    if body.len() <= INLINE_DECOMPRESS_MAX {
        let out = decompress_blocking(encoding, &body, limit, &mut share)?;
        return Ok((out, share));
    }
    tokio::task::spawn_blocking(move || {
        let out = decompress_blocking(encoding, &body, limit, &mut share)?;
        Ok((out, share))
    })
    .await
    .map_err(|e| RequestError::Malformed(format!("decompressing the request body failed: {e}")))?
}

fn decompress_blocking(
    encoding: ContentEncoding,
    body: &[u8],
    limit: usize,
    share: &mut BudgetShare,
) -> Result<Bytes, RequestError> {
    match encoding {
        ContentEncoding::Identity => Ok(Bytes::copy_from_slice(body)),
        ContentEncoding::Gzip => read_all(
            flate2::read::MultiGzDecoder::new(body),
            encoding,
            limit,
            share,
        ),
        ContentEncoding::Deflate => {
            // RFC 9110 "deflate" is zlib-wrapped; some clients send raw deflate.
            let zlib_header = body.len() >= 2
                && body[0] & 0x0f == 8
                && (u16::from(body[0]) << 8 | u16::from(body[1])) % 31 == 0;
            if zlib_header {
                read_all(flate2::read::ZlibDecoder::new(body), encoding, limit, share)
            } else {
                read_all(
                    flate2::read::DeflateDecoder::new(body),
                    encoding,
                    limit,
                    share,
                )
            }
        }
        ContentEncoding::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(body)
                .map_err(|e| RequestError::Malformed(format!("invalid zstd request body: {e}")))?;
            read_all(decoder, encoding, limit, share)
        }
    }
}

fn read_all(
    mut reader: impl Read,
    encoding: ContentEncoding,
    limit: usize,
    share: &mut BudgetShare,
) -> Result<Bytes, RequestError> {
    let mut out: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; DECOMPRESS_CHUNK];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(RequestError::Malformed(format!(
                    "invalid {} request body: {e}",
                    encoding.name()
                )))
            }
        };
        if n == 0 {
            return Ok(Bytes::from(out));
        }
        if out.len() + n > limit {
            return Err(too_large("decompressed request body", limit));
        }
        share.take(n)?;
        out.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::ingest::ByteBudget;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[tokio::test]
    async fn gzip_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024);
        let budget = ByteBudget::new(64 * 1024 * 1024, Default::default());
        let r = decompress(
            ContentEncoding::Gzip,
            Bytes::from(bomb),
            1024 * 1024,
            budget.share(),
        )
        .await;
        assert_eq!(
            r.unwrap_err().to_string(),
            "decompressed request body is larger than max_request_body_size (1048576 bytes)"
        );
        assert_eq!(budget.available(), 64 * 1024 * 1024);
    }

    #[tokio::test]
    async fn deflate_zlib_and_raw_and_zstd_decode() {
        let data = b"hello hello hello".to_vec();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&data).unwrap();
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&data).unwrap();
        let zs = zstd::encode_all(&data[..], 3).unwrap();
        let budget = ByteBudget::new(1024, Default::default());
        for (enc, body) in [
            (ContentEncoding::Deflate, z.finish().unwrap()),
            (ContentEncoding::Deflate, raw.finish().unwrap()),
            (ContentEncoding::Zstd, zs),
        ] {
            let (out, _share) = decompress(enc, Bytes::from(body), 100, budget.share())
                .await
                .unwrap();
            assert_eq!(out, Bytes::from(data.clone()), "{enc:?}");
        }
    }

    #[test]
    fn content_encodings() {
        assert_eq!(ContentEncoding::parse(None), Ok(ContentEncoding::Identity));
        assert_eq!(
            ContentEncoding::parse(Some("GZIP")),
            Ok(ContentEncoding::Gzip)
        );
        assert_eq!(
            ContentEncoding::parse(Some("br")).unwrap_err(),
            "unsupported Content-Encoding \"br\" (supported: gzip, zstd, deflate)"
        );
    }
}
