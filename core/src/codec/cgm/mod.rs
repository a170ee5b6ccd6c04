//! The Continuous Glucose Monitoring Service (CGMS 1.0.1, service 0x181F):
//! the characteristics a CGM sensor notifies or lets the phone read.
//!
//! First stage of the data flow for glucose: the transport hands over the
//! value bytes of a CGM Measurement notification (or a read of Feature,
//! Status, Session Start Time or Session Run Time) and these decoders turn
//! them into typed values; the session maps time offsets to absolute time
//! with [`CgmSessionStartTime::to_utc`] and the CGM Specific Ops and Record
//! Access control points live in [`socp`] and [`super::racp`].
//!
//! Decisions that shaped this module:
//!
//! - **E2E-CRC presence is an input, not a guess.** Whether records carry the
//!   CRC is fixed by CGM Feature bit 12, so every decoder of a CRC-optional
//!   characteristic takes `crc: bool`. A record whose CRC does not match is
//!   [`crate::Error::CrcMismatch`], never a reading. Structs keep the CRC they
//!   carried (`crc: Option<u16>`); encoders treat `Some(_)` as "append the
//!   E2E-CRC" and always write the CRC computed over the bytes they produced,
//!   so a value built by hand cannot go out with a stale CRC.
//! - **Raw SFLOATs are kept**, so NaN, NRes and ±INF survive a round trip;
//!   convenience accessors return `Option<f64>`.
//! - **Reserved values are errors** ([`crate::Error::Reserved`]), for flag
//!   bits, annunciation bits, feature bits and enumerations alike: a value
//!   this code cannot interpret is not silently mapped to one it can.

mod feature;
mod measurement;
mod session;
pub mod socp;
mod status;

pub use feature::{CgmFeature, FeatureBits, SampleLocation, SampleType};
pub(crate) use feature::{read_type_location, type_location_octet};
pub use measurement::{CgmMeasurement, Records};
pub use session::{CgmSessionRunTime, CgmSessionStartTime, DateTime, DstOffset, TimeZone};
pub use status::{Annunciation, CalTempOctet, CgmStatus, StatusOctet, WarningOctet};

use super::bytes::{Reader, Writer};
use super::crc::e2e_crc;
use crate::{Error, Result};

/// Reads the E2E-CRC at the reader's position and checks it against the
/// bytes `buf[start..crc_offset]` it protects.
///
/// `buf` must be the buffer the reader reads; `start` is where the record
/// began in it.
pub(crate) fn read_checked_crc(r: &mut Reader<'_>, buf: &[u8], start: usize) -> Result<u16> {
    let offset = r.offset();
    let sent = r.u16("e2e_crc")?;
    // `offset` never exceeds `buf.len()` because the reader just read two
    // bytes after it; `get` keeps that a non-panicking fact anyway.
    let computed = e2e_crc(buf.get(start..offset).unwrap_or_default());
    if sent == computed {
        Ok(sent)
    } else {
        Err(Error::CrcMismatch {
            characteristic: r.characteristic(),
            offset,
            sent,
            computed,
        })
    }
}

/// Appends the E2E-CRC over every byte written so far (the writer holds
/// exactly one record) and returns it.
pub(crate) fn append_crc(w: &mut Writer) -> u16 {
    let crc = e2e_crc(w.as_slice());
    w.u16(crc);
    crc
}
