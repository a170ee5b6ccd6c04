//! The JSON form of every message (`application/json`): for people, tests
//! and third-party clients. Field names are those of [`super::message`].
//!
//! Parsing reads the version first and refuses one this build does not
//! know before it interprets any other field, then checks the message's
//! own rules ([`Message::validate`]). Error reasons give serde's category
//! and the line and column, never the offending text: it may be a reading.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::message::{Alert, AlertAck, Batch, BatchAck, Heartbeat, check_version};
use crate::error::{Error, Result};

/// A protocol message: serialisable, versioned, with rules of its own.
pub trait Message: serde::Serialize + DeserializeOwned {
    /// The rules a message must meet to be sent or accepted.
    fn validate(&self) -> Result<()>;
}

impl Message for Batch {
    fn validate(&self) -> Result<()> {
        Batch::validate(self)
    }
}

impl Message for Alert {
    fn validate(&self) -> Result<()> {
        Alert::validate(self)
    }
}

impl Message for Heartbeat {
    fn validate(&self) -> Result<()> {
        Heartbeat::validate(self)
    }
}

impl Message for BatchAck {
    fn validate(&self) -> Result<()> {
        BatchAck::validate(self)
    }
}

impl Message for AlertAck {
    fn validate(&self) -> Result<()> {
        AlertAck::validate(self)
    }
}

fn json_error(e: &serde_json::Error) -> Error {
    Error::Wire {
        field: "json",
        offset: None,
        reason: format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ),
    }
}

/// Serialises a valid message; fails with [`Error::Wire`] when it breaks
/// its rules (a non-finite value, an unsupported version, ...).
pub fn to_vec<M: Message>(message: &M) -> Result<Vec<u8>> {
    message.validate()?;
    serde_json::to_vec(message).map_err(|e| json_error(&e))
}

/// Parses a message: version first, then the whole, then its rules.
pub fn from_slice<M: Message>(bytes: &[u8]) -> Result<M> {
    #[derive(Deserialize)]
    struct Versioned {
        v: u16,
    }
    let Versioned { v } = serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;
    check_version(v)?;
    let message: M = serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;
    message.validate()?;
    Ok(message)
}
