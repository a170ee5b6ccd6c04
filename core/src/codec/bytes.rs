//! The byte cursors every codec reads and writes through.
//!
//! The cursors themselves are shared with the wire protocol
//! ([`vigil_model::bytes`]); the IEEE 11073 float fields are GATT's alone,
//! so they are added here as [`ReadFloat`] and [`WriteFloat`].

pub use vigil_model::bytes::{Reader, Writer};

use super::float::{Float32, SFloat};
use crate::Result;

/// Reads the IEEE 11073-20601 floats Bluetooth SIG characteristics carry.
pub trait ReadFloat {
    /// Reads a 16-bit SFLOAT.
    fn sfloat(&mut self, field: &'static str) -> Result<SFloat>;
    /// Reads a 32-bit FLOAT.
    fn float32(&mut self, field: &'static str) -> Result<Float32>;
}

impl ReadFloat for Reader<'_> {
    fn sfloat(&mut self, field: &'static str) -> Result<SFloat> {
        Ok(SFloat::from_raw(self.u16(field)?))
    }

    fn float32(&mut self, field: &'static str) -> Result<Float32> {
        Ok(Float32::from_raw(self.u32(field)?))
    }
}

/// Writes the IEEE 11073-20601 floats Bluetooth SIG characteristics carry.
pub trait WriteFloat {
    /// Appends a 16-bit SFLOAT.
    fn sfloat(&mut self, v: SFloat) -> &mut Self;
    /// Appends a 32-bit FLOAT.
    fn float32(&mut self, v: Float32) -> &mut Self;
}

impl WriteFloat for Writer {
    fn sfloat(&mut self, v: SFloat) -> &mut Self {
        self.u16(v.to_raw())
    }

    fn float32(&mut self, v: Float32) -> &mut Self {
        self.u32(v.to_raw())
    }
}
