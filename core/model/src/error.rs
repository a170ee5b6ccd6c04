//! The one error type of the shared model.
//!
//! Decoding errors always name the field and the byte offset where the input
//! went wrong, so a developer staring at a hex dump can find the culprit, and
//! never carry the reading's value (it is protected health information).
//! `vigil-core` converts each variant to its own variant of the same name,
//! so an SDK caller sees one shape of error whichever crate found it.

/// Everything the shared model can refuse: malformed bytes, a wire message
/// it cannot read, a setting that makes no sense.
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
    /// A caller asked for something the core does not know, such as a
    /// characteristic UUID without a codec.
    #[error("invalid input: {0}")]
    InvalidInput(String),
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

/// Result type of the shared model.
pub type Result<T, E = Error> = std::result::Result<T, E>;
