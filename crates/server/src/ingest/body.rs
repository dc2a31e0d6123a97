//! Reading a request body with a size limit and `Content-Encoding` (gzip, zstd), streaming:
//! the limit holds for the bytes as sent and for the bytes after decompression, and both are
//! checked while the body arrives, so neither a huge upload nor a decompression bomb is ever
//! held in memory. Decompression runs on a blocking thread, fed chunk by chunk.

use std::io::{self, Write};

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use http_body_util::BodyExt;

use crate::config::human_size;
use crate::problem::Problem;

/// The `Content-Encoding` header of the upload routes, as the API document describes it
/// ([`content_encoding`] reads it).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
// Describes the header only: never built.
#[allow(dead_code)]
pub(crate) struct ContentEncodingHeader {
    /// gzip, zstd or identity (absent or empty: identity)
    #[param(rename = "Content-Encoding", nullable = false, inline)]
    content_encoding: Option<EncodingName>,
}

/// A body encoding (any case); absent or empty: identity.
// Describes the header only: never built. `openapi::document` adds `""` to the enum.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
enum EncodingName {
    #[serde(rename = "identity")]
    Identity,
    #[serde(rename = "gzip")]
    Gzip,
    #[serde(rename = "x-gzip")]
    XGzip,
    #[serde(rename = "zstd")]
    Zstd,
}

/// A supported `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

/// Largest zstd window accepted (2^24 = 16 MiB; zstd's levels 1-19 use at most 8 MiB), so a
/// tiny frame can't make the decoder allocate a 2 GiB window.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// The request's `Content-Encoding`: 415 for anything else than identity, gzip or zstd.
pub fn content_encoding(headers: &HeaderMap) -> Result<Encoding, Problem> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let text = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match text.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "zstd" => Ok(Encoding::Zstd),
        _ => Err(Problem::unsupported_media_type(format!(
            "Content-Encoding {text:?} is not supported; use gzip, zstd or none"
        ))
        .with("supported_encodings", ["gzip", "zstd", "identity"])),
    }
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: u64, decompressed: bool },
    #[error("the {encoding} body can't be decompressed: {message}")]
    Corrupt {
        encoding: &'static str,
        message: String,
    },
    #[error("the request body could not be read: {0}")]
    Read(String),
    /// The client sent the body too slowly (`limits.body_timeout`, `limits.body_min_rate`).
    #[error("{0}")]
    TooSlow(String),
    #[error("writing the body failed: {0}")]
    Write(String),
}

impl BodyError {
    /// The problem to answer, naming the limit's configuration key.
    pub fn into_problem(self, limit_key: &str) -> Problem {
        match self {
            BodyError::TooLarge {
                limit,
                decompressed,
            } => Problem::too_large(
                limit_key,
                limit,
                if decompressed {
                    format!(
                        "the body is larger than {} ({limit_key} = {limit} bytes) once decompressed",
                        human_size(limit)
                    )
                } else {
                    format!(
                        "the body is larger than {} ({limit_key} = {limit} bytes)",
                        human_size(limit)
                    )
                },
            ),
            BodyError::Corrupt { .. } => Problem::bad_request("corrupt-encoding", self.to_string()),
            BodyError::Read(_) => Problem::bad_request("unreadable-body", self.to_string()),
            BodyError::TooSlow(_) => Problem::new(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                "body-timeout",
                "The request body was sent too slowly",
            )
            .detail(self.to_string()),
            BodyError::Write(_) => Problem::internal(self.to_string()),
        }
    }
}

/// A writer that refuses to grow past `limit` bytes.
struct Limited<W> {
    inner: W,
    written: u64,
    limit: u64,
    exceeded: bool,
}

impl<W: Write> Write for Limited<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("size limit exceeded"));
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Decoder<W: Write> {
    Identity(Limited<W>),
    Gzip(flate2::write::MultiGzDecoder<Limited<W>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, Limited<W>>>),
}

impl<W: Write> Decoder<W> {
    fn new(encoding: Encoding, out: W, limit: u64) -> Result<Self, BodyError> {
        let limited = Limited {
            inner: out,
            written: 0,
            limit,
            exceeded: false,
        };
        Ok(match encoding {
            Encoding::Identity => Decoder::Identity(limited),
            Encoding::Gzip => Decoder::Gzip(flate2::write::MultiGzDecoder::new(limited)),
            Encoding::Zstd => {
                let mut d = zstd::stream::write::Decoder::new(limited)
                    .map_err(|e| BodyError::Write(e.to_string()))?;
                d.window_log_max(ZSTD_WINDOW_LOG_MAX)
                    .map_err(|e| BodyError::Write(e.to_string()))?;
                Decoder::Zstd(Box::new(d))
            }
        })
    }

    fn limited(&self) -> &Limited<W> {
        match self {
            Decoder::Identity(l) => l,
            Decoder::Gzip(d) => d.get_ref(),
            Decoder::Zstd(d) => d.get_ref(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Decoder::Identity(_) => "identity",
            Decoder::Gzip(_) => "gzip",
            Decoder::Zstd(_) => "zstd",
        }
    }

    fn error(&self, e: io::Error) -> BodyError {
        let limited = self.limited();
        if limited.exceeded {
            BodyError::TooLarge {
                limit: limited.limit,
                decompressed: !matches!(self, Decoder::Identity(_)),
            }
        } else if matches!(self, Decoder::Identity(_)) {
            BodyError::Write(e.to_string())
        } else {
            BodyError::Corrupt {
                encoding: self.name(),
                message: e.to_string(),
            }
        }
    }

    fn write_all(&mut self, data: &[u8]) -> Result<(), BodyError> {
        let result = match self {
            Decoder::Identity(l) => l.write_all(data),
            Decoder::Gzip(d) => d.write_all(data),
            Decoder::Zstd(d) => d.write_all(data),
        };
        result.map_err(|e| self.error(e))
    }

    fn finish(mut self) -> Result<W, BodyError> {
        let result = match &mut self {
            Decoder::Identity(l) => l.flush(),
            Decoder::Gzip(d) => d.try_finish(),
            Decoder::Zstd(d) => d.do_finish(),
        };
        if let Err(e) = result {
            return Err(self.error(e));
        }
        Ok(match self {
            Decoder::Identity(l) => l.inner,
            Decoder::Gzip(d) => {
                d.finish()
                    .map_err(|e| BodyError::Write(e.to_string()))?
                    .inner
            }
            Decoder::Zstd(d) => d.into_inner().inner,
        })
    }
}

/// After refusing a body, read (and drop) up to this much more of it, so that the client,
/// still sending, gets to read the 413 instead of a connection reset ("lingering close").
const LINGER_BYTES: u64 = 8 << 20;
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(2);

pub(crate) async fn linger(body: &mut Body) {
    let drain = async {
        let mut drained: u64 = 0;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                drained += data.len() as u64;
                if drained > LINGER_BYTES {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// A body read error: [`BodyError::TooSlow`] when the body deadline cut the request off.
fn read_error_of(e: &axum::Error) -> BodyError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = source {
        if let Some(slow) = error.downcast_ref::<crate::slow_clients::BodyTooSlow>() {
            return BodyError::TooSlow(slow.to_string());
        }
        source = error.source();
    }
    BodyError::Read(e.to_string())
}

/// Reads `body` into `out`, decompressing `encoding`; at most `limit` bytes as sent and at
/// most `limit` bytes decompressed. `content_length` (when sent) is checked first.
pub async fn receive<W: Write + Send + 'static>(
    mut body: Body,
    headers: &HeaderMap,
    encoding: Encoding,
    limit: u64,
    out: W,
) -> Result<W, BodyError> {
    let result = receive_inner(&mut body, headers, encoding, limit, out).await;
    if matches!(result, Err(BodyError::TooLarge { .. })) {
        linger(&mut body).await;
    }
    result
}

async fn receive_inner<W: Write + Send + 'static>(
    body: &mut Body,
    headers: &HeaderMap,
    encoding: Encoding,
    limit: u64,
    out: W,
) -> Result<W, BodyError> {
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        && len > limit
    {
        return Err(BodyError::TooLarge {
            limit,
            decompressed: false,
        });
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let worker = tokio::task::spawn_blocking(move || {
        let mut decoder = Decoder::new(encoding, out, limit)?;
        while let Some(chunk) = rx.blocking_recv() {
            decoder.write_all(&chunk)?;
        }
        decoder.finish()
    });
    let mut received: u64 = 0;
    let mut read_error = None;
    while let Some(frame) = body.frame().await {
        let data = match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue, // trailers
            },
            Err(e) => {
                read_error = Some(read_error_of(&e));
                break;
            }
        };
        received += data.len() as u64;
        if received > limit {
            read_error = Some(BodyError::TooLarge {
                limit,
                decompressed: false,
            });
            break;
        }
        if tx.send(data).await.is_err() {
            break; // the decoder stopped: its error is the answer
        }
    }
    drop(tx);
    let result = worker
        .await
        .map_err(|e| BodyError::Write(format!("decoder task failed: {e}")))?;
    match (read_error, result) {
        (_, Err(e @ BodyError::TooLarge { .. })) => Err(e),
        (Some(e), _) => Err(e),
        (None, result) => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    async fn run(data: Vec<u8>, encoding: Encoding, limit: u64) -> Result<Vec<u8>, BodyError> {
        receive(
            Body::from(data),
            &HeaderMap::new(),
            encoding,
            limit,
            Vec::new(),
        )
        .await
    }

    #[tokio::test]
    async fn decodes_and_limits() {
        let text = b"hello world ".repeat(1000);
        assert_eq!(
            run(text.clone(), Encoding::Identity, 1 << 20)
                .await
                .unwrap(),
            text
        );
        assert_eq!(
            run(gzip(&text), Encoding::Gzip, 1 << 20).await.unwrap(),
            text
        );
        let z = zstd::stream::encode_all(&text[..], 3).unwrap();
        assert_eq!(run(z, Encoding::Zstd, 1 << 20).await.unwrap(), text);

        // Two gzip members are one body.
        let mut two = gzip(b"ab");
        two.extend(gzip(b"cd"));
        assert_eq!(run(two, Encoding::Gzip, 100).await.unwrap(), b"abcd");

        assert!(matches!(
            run(text.clone(), Encoding::Identity, 100).await,
            Err(BodyError::TooLarge {
                limit: 100,
                decompressed: false
            })
        ));
        // A bomb: 64 MiB of zeros is ~64 KiB of gzip.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 100_000);
        assert!(matches!(
            run(bomb, Encoding::Gzip, 1 << 20).await,
            Err(BodyError::TooLarge {
                decompressed: true,
                ..
            })
        ));
        let zbomb = zstd::stream::encode_all(&vec![0u8; 64 << 20][..], 3).unwrap();
        assert!(matches!(
            run(zbomb, Encoding::Zstd, 1 << 20).await,
            Err(BodyError::TooLarge {
                decompressed: true,
                ..
            })
        ));
        assert!(matches!(
            run(b"not gzip at all".to_vec(), Encoding::Gzip, 1000).await,
            Err(BodyError::Corrupt {
                encoding: "gzip",
                ..
            })
        ));
        assert!(matches!(
            run(b"not zstd".to_vec(), Encoding::Zstd, 1000).await,
            Err(BodyError::Corrupt {
                encoding: "zstd",
                ..
            })
        ));
        let z = zstd::stream::encode_all(&text[..], 3).unwrap();
        assert!(matches!(
            run(z[..z.len() / 2].to_vec(), Encoding::Zstd, 1 << 20).await,
            Err(BodyError::Corrupt { .. })
        ));
    }

    #[test]
    fn encodings() {
        let mut h = HeaderMap::new();
        assert_eq!(content_encoding(&h).unwrap(), Encoding::Identity);
        h.insert(header::CONTENT_ENCODING, "GZIP".parse().unwrap());
        assert_eq!(content_encoding(&h).unwrap(), Encoding::Gzip);
        h.insert(header::CONTENT_ENCODING, "br".parse().unwrap());
        assert_eq!(content_encoding(&h).unwrap_err().status, 415);
    }
}
