//! The versioned wire protocol between the SDK and the ingest service.
//!
//! Place in the data flow: sync takes readings out of the buffer, the
//! alert outbox and the SDK's health, turns them into the messages of
//! [`message`] ([`Batch`], [`Alert`], [`Heartbeat`]), and encodes them here;
//! the cloud decodes them with the same code and answers with a
//! [`BatchAck`] or [`AlertAck`]. `docs/protocol.md` is the same contract
//! written for third parties.
//!
//! Decisions that shaped it:
//!
//! - **Two encodings of one data model.** JSON ([`json`]) for people and
//!   third parties; a columnar binary batch ([`binary`]) for phones, where
//!   bytes cost battery and data plans. Both enforce the same rules
//!   ([`Batch::validate`]) and both are lossless: a batch that encodes in
//!   one decodes to an equal batch from either (values bit for bit).
//! - **Versions only add.** Every message carries `v`. A server that speaks
//!   version N accepts every version from [`MIN_PROTOCOL_VERSION`] to N,
//!   treating fields added after the client's version as absent, and
//!   answers in the client's version; a version above N is refused with a
//!   typed error (HTTP 400), never half-read. The binary layout is fixed
//!   per version.
//! - **Idempotent by key.** A reading is identified by (patient, device,
//!   stream, sensor session, sequence) and a batch by its [`BatchId`]: the
//!   server stores each once, and the phone marks a reading synced only
//!   after an acknowledgement that covers it.

pub mod binary;
mod columns;
pub mod compress;
pub mod json;
pub mod message;

pub use compress::ContentEncoding;
pub use message::{
    Alert, AlertAck, AppState, Batch, BatchAck, BatchId, BufferHealth, DeviceHealth, Heartbeat,
    HeldBack, PressureLevel, RejectReason, Rejected, SeqRange, StreamAck, StreamReadings,
    WireReading,
};

use crate::error::{Error, Result};

/// The protocol version this build speaks and writes.
pub const PROTOCOL_VERSION: u16 = 1;

/// The oldest protocol version this build still reads.
pub const MIN_PROTOCOL_VERSION: u16 = 1;

/// Content type of the JSON form of every message.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// Content type of the binary form of a batch, with its layout version.
pub const BINARY_CONTENT_TYPE: &str = "application/vnd.vigil.batch+binary; v=1";

/// The `Prefer` preference (RFC 7240) by which a phone asks for the
/// minimal answer: `204 No Content`, no body, when a batch is stored whole
/// (every reading, none refused) or an alert event is stored. A batch with
/// a refusal is answered with the JSON [`BatchAck`] whatever the
/// preference, so the phone learns each reason; a client that does not ask
/// gets the JSON acknowledgements as before. A `204` needs no body to name
/// its request: HTTP/1.1 answers in request order on a connection, and TLS
/// on every hop outside loopback means no middlebox can forge one.
pub const PREFER_MINIMAL: &str = "return=minimal";

/// Whether a `Prefer` value asks for [`PREFER_MINIMAL`] (a comma-separated
/// list of preferences; parameters after `;` and blanks around `=` are
/// ignored, names compared without case).
pub fn prefers_minimal(prefer: &str) -> bool {
    prefer.split(',').any(|pref| {
        let Some(head) = pref.split(';').next() else {
            return false;
        };
        let mut kv = head.splitn(2, '=');
        let name = kv.next().unwrap_or("").trim();
        let value = kv.next().unwrap_or("").trim().trim_matches('"');
        name.eq_ignore_ascii_case("return") && value.eq_ignore_ascii_case("minimal")
    })
}

/// Longest patient id, device id, alert id or SDK version, in bytes.
pub const MAX_TEXT_BYTES: usize = 256;

/// Most readings plus held-back readings one batch may carry: a day of
/// 1 Hz heart rate and its RR intervals fits with room to spare, and the
/// decoder's memory stays bounded whatever a hostile body claims.
pub const MAX_READINGS_PER_BATCH: usize = 1 << 19;

/// Largest body after decompression, in bytes.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// How a body is encoded, as named by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// [`JSON_CONTENT_TYPE`].
    Json,
    /// [`BINARY_CONTENT_TYPE`] (batches only).
    Binary,
}

impl Format {
    /// Parses a `Content-Type` header: the media type case-insensitively,
    /// and for the binary form a `v` parameter, when present, that must
    /// name a supported version. Another media type is
    /// [`Error::WireUnsupported`] (HTTP 415); a newer version is
    /// [`Error::Wire`] (400, as for a body of that version).
    pub fn from_content_type(header: &str) -> Result<Format> {
        let unsupported = |reason: &str| Error::WireUnsupported {
            field: "content-type",
            reason: reason.into(),
        };
        let mut parts = header.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let format = match media.as_str() {
            "application/json" => Format::Json,
            "application/vnd.vigil.batch+binary" => Format::Binary,
            _ => return Err(unsupported("unsupported media type")),
        };
        for param in parts {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            if format == Format::Binary && name.trim().eq_ignore_ascii_case("v") {
                let v: u16 = value
                    .trim()
                    .trim_matches('"')
                    .parse()
                    .map_err(|_| unsupported("`v` parameter is not a version number"))?;
                message::check_version(v)?;
            }
        }
        Ok(format)
    }

    /// The `Content-Type` to send.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => JSON_CONTENT_TYPE,
            Format::Binary => BINARY_CONTENT_TYPE,
        }
    }
}

/// Encodes a batch as a request body: `format`, then `encoding`.
pub fn encode_batch(batch: &Batch, format: Format, encoding: ContentEncoding) -> Result<Vec<u8>> {
    let body = match format {
        Format::Json => json::to_vec(batch)?,
        Format::Binary => binary::encode(batch)?,
    };
    compress::compress(&body, encoding)
}

/// Decodes a request body into a batch: undo `encoding` (at most
/// [`MAX_BODY_BYTES`]), then parse `format`. Never panics; every failure is
/// a typed error.
pub fn decode_batch(body: &[u8], format: Format, encoding: ContentEncoding) -> Result<Batch> {
    let plain = compress::decompress(body, encoding, MAX_BODY_BYTES)?;
    match format {
        Format::Json => json::from_slice(&plain),
        Format::Binary => binary::decode(&plain),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimal_preference_is_read_from_any_place_in_the_list() {
        assert!(prefers_minimal(PREFER_MINIMAL));
        assert!(prefers_minimal("respond-async, Return = Minimal; x=1"));
        assert!(prefers_minimal("return=\"minimal\""));
        assert!(!prefers_minimal("return=representation"));
        assert!(!prefers_minimal("minimal"));
        assert!(!prefers_minimal(""));
    }

    #[test]
    fn content_types_parse_with_parameters_and_refuse_newer_versions() {
        assert_eq!(
            Format::from_content_type("application/json; charset=utf-8").unwrap(),
            Format::Json
        );
        assert_eq!(
            Format::from_content_type(BINARY_CONTENT_TYPE).unwrap(),
            Format::Binary
        );
        assert_eq!(
            Format::from_content_type("Application/VND.vigil.batch+binary").unwrap(),
            Format::Binary
        );
        assert!(Format::from_content_type("application/vnd.vigil.batch+binary; v=99").is_err());
        assert!(Format::from_content_type("text/plain").is_err());
        for f in [Format::Json, Format::Binary] {
            assert_eq!(Format::from_content_type(f.content_type()).unwrap(), f);
        }
    }
}
