//! The one error type of the core.
//!
//! Decoding errors always name the field and the byte offset where the input
//! went wrong, so a developer staring at a hex dump can find the culprit, and
//! never carry the reading's value (it is protected health information).

/// Everything that can go wrong in the core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input ended before a field that its flags or length promise.
    #[error(
        "{characteristic}: field `{field}` at byte {offset}: input ends early (needs {needed} byte(s), {available} left)"
    )]
    Truncated {
        /// Characteristic being decoded, e.g. `"CGM Measurement"`.
        characteristic: &'static str,
        /// Name of the field that could not be read.
        field: &'static str,
        /// Byte offset at which the field starts.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// Bytes remain after the last field the value's flags describe.
    #[error("{characteristic}: {extra} unexpected byte(s) after field `{field}` at byte {offset}")]
    Oversized {
        /// Characteristic being decoded.
        characteristic: &'static str,
        /// Last field that was read.
        field: &'static str,
        /// Offset of the first unexpected byte.
        offset: usize,
        /// How many bytes are left over.
        extra: usize,
    },
    /// A field holds a value the specification reserves for future use.
    #[error("{characteristic}: field `{field}` at byte {offset} holds reserved value {value:#x}")]
    Reserved {
        /// Characteristic being decoded.
        characteristic: &'static str,
        /// Field holding the reserved value.
        field: &'static str,
        /// Byte offset of the field.
        offset: usize,
        /// The reserved value as read.
        value: u32,
    },
    /// Fields contradict each other or the specification's rules.
    #[error("{characteristic}: field `{field}` at byte {offset}: {reason}")]
    Inconsistent {
        /// Characteristic being decoded.
        characteristic: &'static str,
        /// Field found inconsistent.
        field: &'static str,
        /// Byte offset of the field.
        offset: usize,
        /// What rule was broken.
        reason: &'static str,
    },
    /// The E2E-CRC does not match the bytes it protects: the record is corrupt
    /// and must never become a reading.
    #[error(
        "{characteristic}: field `e2e_crc` at byte {offset}: CRC mismatch (sent {sent:#06x}, computed {computed:#06x})"
    )]
    CrcMismatch {
        /// Characteristic being decoded.
        characteristic: &'static str,
        /// Byte offset of the CRC field.
        offset: usize,
        /// CRC carried by the record.
        sent: u16,
        /// CRC computed over the record's bytes.
        computed: u16,
    },
    /// A value cannot be represented in the characteristic's wire format.
    #[error("{characteristic}: field `{field}` cannot be encoded: {reason}")]
    Unencodable {
        /// Characteristic being encoded.
        characteristic: &'static str,
        /// Field that does not fit.
        field: &'static str,
        /// Why it does not fit.
        reason: &'static str,
    },
    /// A caller asked for something the core does not know, such as a
    /// characteristic UUID without a codec.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A device or the Bluetooth stack refused, failed or timed out.
    #[error("device: {0}")]
    Device(String),
    /// A setting (an alert threshold, a sampling interval, ...) is out of its
    /// meaningful range or contradicts another setting, e.g. a low-glucose
    /// threshold above the high one. Refused when the configuration is built,
    /// so a bad setting can never silently disable an alarm.
    #[error("invalid setting `{setting}`: {reason}")]
    InvalidSetting {
        /// Name of the offending setting, as spelled in its struct.
        setting: &'static str,
        /// What is wrong with it (settings are not patient data).
        reason: String,
    },
    /// The on-phone SQLite buffer failed (I/O, corruption, a schema the
    /// code does not know). Carries SQLite's result code when there is one
    /// and a message that never contains reading values.
    #[error("storage: {message}")]
    Storage {
        /// SQLite's extended result code, when the failure came from SQLite.
        code: Option<i32>,
        /// What failed, free of patient data.
        message: String,
    },
    /// The buffer is over its byte budget and holds nothing it may evict
    /// (only unsent record-class data and in-flight batches are left); the
    /// write was refused as a whole rather than dropped silently.
    #[error(
        "buffer full: {used_bytes} bytes in use of a {budget_bytes}-byte budget, nothing evictable"
    )]
    BufferFull {
        /// Bytes in use after every allowed eviction.
        used_bytes: u64,
        /// The byte budget the app set.
        budget_bytes: u64,
    },
    /// Sync could not reach the ingest service, or it answered with an
    /// error that a retry may cure (a refused connection, a timeout, a
    /// `5xx`, a `429`). Never carries a token or a reading.
    #[error("network: {0}")]
    Network(String),
    /// The ingest service refused the token (`401`/`403`) even after the
    /// token provider was asked for a fresh one.
    #[error("auth: {0}")]
    Auth(String),
    /// A wire-protocol message (batch, alert, heartbeat, acknowledgement)
    /// is malformed, of an unsupported version, or cannot be encoded
    /// losslessly. Names the field and, for the binary form, the byte
    /// offset; never carries a reading's value.
    #[error("wire: field `{field}`{}: {reason}", offset.map(|o| format!(" at byte {o}")).unwrap_or_default())]
    Wire {
        /// The field (or stage, e.g. `"content-encoding"`) that failed.
        field: &'static str,
        /// Byte offset in the (decompressed) binary body, when known.
        offset: Option<usize>,
        /// What is wrong, free of patient data.
        reason: String,
    },
    /// A wire body's media type or content coding is not one this build
    /// reads (HTTP `415`), as opposed to a body that is malformed.
    #[error("wire: unsupported {field}: {reason}")]
    WireUnsupported {
        /// `"content-type"` or `"content-encoding"`.
        field: &'static str,
        /// What was refused, free of patient data.
        reason: String,
    },
    /// A wire body is larger than the receiver's limit, as sent or once
    /// decompressed (HTTP `413`): a smaller batch would be read.
    #[error("wire: body larger than {limit} bytes{}", if *decompressed { " once decompressed" } else { "" })]
    WireTooLarge {
        /// The limit in bytes.
        limit: usize,
        /// Whether the limit was passed while decompressing.
        decompressed: bool,
    },
}

/// Result type of the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The shared model's errors keep their variant, so a caller matching on
/// `Error::Wire` or `Error::Truncated` does not care which crate found it.
impl From<vigil_model::Error> for Error {
    fn from(e: vigil_model::Error) -> Error {
        use vigil_model::Error as M;
        match e {
            M::Truncated {
                characteristic,
                field,
                offset,
                needed,
                available,
            } => Error::Truncated {
                characteristic,
                field,
                offset,
                needed,
                available,
            },
            M::Oversized {
                characteristic,
                field,
                offset,
                extra,
            } => Error::Oversized {
                characteristic,
                field,
                offset,
                extra,
            },
            M::Reserved {
                characteristic,
                field,
                offset,
                value,
            } => Error::Reserved {
                characteristic,
                field,
                offset,
                value,
            },
            M::Inconsistent {
                characteristic,
                field,
                offset,
                reason,
            } => Error::Inconsistent {
                characteristic,
                field,
                offset,
                reason,
            },
            M::InvalidInput(message) => Error::InvalidInput(message),
            M::InvalidSetting { setting, reason } => Error::InvalidSetting { setting, reason },
            M::Wire {
                field,
                offset,
                reason,
            } => Error::Wire {
                field,
                offset,
                reason,
            },
            M::WireUnsupported { field, reason } => Error::WireUnsupported { field, reason },
            M::WireTooLarge {
                limit,
                decompressed,
            } => Error::WireTooLarge {
                limit,
                decompressed,
            },
        }
    }
}
