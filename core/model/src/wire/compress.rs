//! `Content-Encoding` for wire bodies: identity, gzip and deflate.
//!
//! One crate, `flate2` on its pure-Rust `miniz_oxide` backend: gzip is
//! what every HTTP stack and proxy understands, the backend needs no C
//! toolchain when the core is cross-compiled for iOS and Android, and it
//! adds little to the app. Decompression is capped at
//! [`super::MAX_BODY_BYTES`] so that a small hostile body cannot expand
//! into gigabytes (a "zip bomb").

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::{GzDecoder, ZlibDecoder};
use flate2::write::{GzEncoder, ZlibEncoder};

use crate::error::{Error, Result};

/// A body's `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentEncoding {
    /// Not compressed (no header, or `identity`).
    Identity,
    /// `gzip` (RFC 1952), also accepted as `x-gzip`.
    Gzip,
    /// `deflate`, which HTTP defines as the zlib format (RFC 1950): two
    /// header bytes and a four-byte checksum around raw deflate.
    Deflate,
}

impl ContentEncoding {
    /// Parses a `Content-Encoding` header value (case-insensitive; an
    /// empty value is identity). A list of several codings is refused:
    /// no Vigil client stacks them.
    pub fn parse(header: &str) -> Result<ContentEncoding> {
        match header.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Ok(ContentEncoding::Identity),
            "gzip" | "x-gzip" => Ok(ContentEncoding::Gzip),
            "deflate" => Ok(ContentEncoding::Deflate),
            _ => Err(Error::WireUnsupported {
                field: "content-encoding",
                reason: "not identity, gzip or deflate".into(),
            }),
        }
    }

    /// The header value, or `None` for identity (send no header).
    pub fn header(self) -> Option<&'static str> {
        match self {
            ContentEncoding::Identity => None,
            ContentEncoding::Gzip => Some("gzip"),
            ContentEncoding::Deflate => Some("deflate"),
        }
    }
}

fn io_error(stage: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::Wire {
        field: "content-encoding",
        offset: None,
        reason: format!("{stage}: {:?}", e.kind()),
    }
}

/// Compresses `body` (at the highest level: batches are small and sent
/// rarely, so bytes matter more than microseconds).
pub fn compress(body: &[u8], encoding: ContentEncoding) -> Result<Vec<u8>> {
    let level = Compression::best();
    match encoding {
        ContentEncoding::Identity => Ok(body.to_vec()),
        ContentEncoding::Gzip => {
            let mut e = GzEncoder::new(Vec::with_capacity(body.len() / 2 + 32), level);
            e.write_all(body).map_err(io_error("gzip"))?;
            e.finish().map_err(io_error("gzip"))
        }
        ContentEncoding::Deflate => {
            let mut e = ZlibEncoder::new(Vec::with_capacity(body.len() / 2 + 16), level);
            e.write_all(body).map_err(io_error("deflate"))?;
            e.finish().map_err(io_error("deflate"))
        }
    }
}

/// Decompresses `body`; fails with [`Error::Wire`] on a corrupt stream and
/// [`Error::WireTooLarge`] when the result would exceed `limit` bytes.
pub fn decompress(body: &[u8], encoding: ContentEncoding, limit: usize) -> Result<Vec<u8>> {
    fn bounded(mut r: impl Read, limit: usize, stage: &'static str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        (&mut r)
            .take(cap)
            .read_to_end(&mut out)
            .map_err(io_error(stage))?;
        if out.len() > limit {
            return Err(Error::WireTooLarge {
                limit,
                decompressed: true,
            });
        }
        Ok(out)
    }
    match encoding {
        ContentEncoding::Identity => {
            if body.len() > limit {
                return Err(Error::WireTooLarge {
                    limit,
                    decompressed: false,
                });
            }
            Ok(body.to_vec())
        }
        ContentEncoding::Gzip => bounded(GzDecoder::new(body), limit, "gzip"),
        ContentEncoding::Deflate => bounded(ZlibDecoder::new(body), limit, "deflate"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_coding_round_trips_and_parses_its_own_header() {
        let body: Vec<u8> = (0..2000u32).map(|i| (i % 7) as u8).collect();
        for enc in [
            ContentEncoding::Identity,
            ContentEncoding::Gzip,
            ContentEncoding::Deflate,
        ] {
            let packed = compress(&body, enc).unwrap();
            assert_eq!(decompress(&packed, enc, 1 << 20).unwrap(), body);
            let header = enc.header().unwrap_or("");
            assert_eq!(ContentEncoding::parse(header).unwrap(), enc);
        }
        assert!(ContentEncoding::parse("br").is_err());
        assert!(ContentEncoding::parse("gzip, deflate").is_err());
    }

    #[test]
    fn a_body_expanding_past_the_limit_is_refused() {
        let packed = compress(&vec![0u8; 100_000], ContentEncoding::Gzip).unwrap();
        assert!(packed.len() < 1000);
        assert!(decompress(&packed, ContentEncoding::Gzip, 10_000).is_err());
        assert!(decompress(&packed, ContentEncoding::Gzip, 100_000).is_ok());
    }

    #[test]
    fn a_corrupt_stream_is_a_typed_error() {
        let mut packed = compress(b"hello hello hello", ContentEncoding::Gzip).unwrap();
        let mid = packed.len() / 2;
        packed[mid] ^= 0xff;
        packed.truncate(packed.len() - 2);
        assert!(matches!(
            decompress(&packed, ContentEncoding::Gzip, 1000),
            Err(Error::Wire { .. })
        ));
    }
}
