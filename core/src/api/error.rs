//! The facade's public error: few variants, each actionable, with a message
//! free of patient data. The one place where core errors become public ones;
//! with the `uniffi` feature it is also the error Kotlin (`SdkException`)
//! and Swift (`SdkError`) see, so there is no second enum to keep in step.

/// What went wrong, as an app can act on it.
///
/// Across the FFI it is flat: each variant carries only its message (the
/// `Display` text, e.g. `storage: the buffer is full`), which never holds a
/// reading value or a patient id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Error), uniffi(flat_error))]
pub enum SdkError {
    /// The on-phone buffer failed or is full; the message says which.
    #[error("storage: {message}")]
    Storage {
        /// What failed.
        message: String,
    },
    /// The server could not be reached or refused the request.
    #[error("network: {message}")]
    Network {
        /// What failed.
        message: String,
    },
    /// The server refused the token.
    #[error("auth: {message}")]
    Auth {
        /// What failed.
        message: String,
    },
    /// An argument or setting is invalid (unknown device, bad UUID, bad
    /// threshold, ...).
    #[error("invalid input: {message}")]
    InvalidInput {
        /// What is wrong.
        message: String,
    },
    /// A device or the Bluetooth stack refused, failed or timed out.
    #[error("device: {message}")]
    Device {
        /// What failed.
        message: String,
    },
    /// The call needs something this SDK was not configured with (a sync
    /// server, the host-fed transport) or is not valid in its state.
    #[error("not available: {message}")]
    NotAvailable {
        /// What is missing.
        message: String,
    },
}

impl SdkError {
    pub(crate) fn invalid(message: impl Into<String>) -> SdkError {
        SdkError::InvalidInput {
            message: message.into(),
        }
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> SdkError {
        SdkError::NotAvailable {
            message: message.into(),
        }
    }
}

impl From<crate::Error> for SdkError {
    fn from(e: crate::Error) -> SdkError {
        use crate::Error as E;
        let message = e.to_string();
        match e {
            E::Storage { .. } | E::BufferFull { .. } => SdkError::Storage { message },
            E::Device(_) => SdkError::Device { message },
            E::Wire { .. } | E::WireUnsupported { .. } | E::WireTooLarge { .. } | E::Network(_) => {
                SdkError::Network { message }
            }
            E::Auth(_) => SdkError::Auth { message },
            E::InvalidInput(_) | E::InvalidSetting { .. } => SdkError::InvalidInput { message },
            E::Truncated { .. }
            | E::Oversized { .. }
            | E::Reserved { .. }
            | E::Inconsistent { .. }
            | E::CrcMismatch { .. }
            | E::Unencodable { .. } => SdkError::Device { message },
        }
    }
}

/// Result of the facade.
pub type SdkResult<T> = std::result::Result<T, SdkError>;
