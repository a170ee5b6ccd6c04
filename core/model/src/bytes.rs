//! Little-endian cursors over binary values: the phone's Bluetooth SIG
//! codecs and the binary wire form both read through them.
//!
//! Every read is bounds-checked and names the field it reads, so a decoder is
//! a straight list of `r.u8("flags")?`-style calls and cannot panic; Bluetooth
//! SIG characteristics and the wire form are little-endian throughout. The
//! IEEE 11073 float fields are the phone codec's own (`vigil_core::codec::float`).

use crate::{Error, Result};

/// A bounds-checked reader over one characteristic value.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    characteristic: &'static str,
    buf: &'a [u8],
    pos: usize,
    last_field: &'static str,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf`, naming `characteristic` in every error.
    pub fn new(characteristic: &'static str, buf: &'a [u8]) -> Self {
        Self {
            characteristic,
            buf,
            pos: 0,
            last_field: "start",
        }
    }

    /// Byte offset of the next read.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The characteristic name errors carry.
    pub fn characteristic(&self) -> &'static str {
        self.characteristic
    }

    /// Reads `n` raw bytes.
    pub fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.buf.get(self.pos..end)) {
            Some(bytes) => {
                self.pos += n;
                self.last_field = field;
                Ok(bytes)
            }
            None => Err(Error::Truncated {
                characteristic: self.characteristic,
                field,
                offset: self.pos,
                needed: n,
                available: self.remaining(),
            }),
        }
    }

    /// Reads exactly `N` bytes into an array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let bytes = self.take(field, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads a `uint8`.
    pub fn u8(&mut self, field: &'static str) -> Result<u8> {
        Ok(u8::from_le_bytes(self.array(field)?))
    }

    /// Reads a `sint8`.
    pub fn i8(&mut self, field: &'static str) -> Result<i8> {
        Ok(i8::from_le_bytes(self.array(field)?))
    }

    /// Reads a little-endian `uint16`.
    pub fn u16(&mut self, field: &'static str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    /// Reads a little-endian `sint16`.
    pub fn i16(&mut self, field: &'static str) -> Result<i16> {
        Ok(i16::from_le_bytes(self.array(field)?))
    }

    /// Reads a little-endian `uint24` (used by annunciation and feature fields).
    pub fn u24(&mut self, field: &'static str) -> Result<u32> {
        let [a, b, c] = self.array(field)?;
        Ok(u32::from_le_bytes([a, b, c, 0]))
    }

    /// Reads a little-endian `uint32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    /// Fails with [`Error::Oversized`] if any byte is left: a value longer
    /// than its flags describe is malformed, not padding to ignore.
    pub fn finish(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(Error::Oversized {
                characteristic: self.characteristic,
                field: self.last_field,
                offset: self.pos,
                extra,
            }),
        }
    }

    /// Builds a [`Error::Reserved`] for a field that started at `offset`.
    pub fn reserved(&self, field: &'static str, offset: usize, value: u32) -> Error {
        Error::Reserved {
            characteristic: self.characteristic,
            field,
            offset,
            value,
        }
    }

    /// Builds a [`Error::Inconsistent`] for a field that started at `offset`.
    pub fn inconsistent(&self, field: &'static str, offset: usize, reason: &'static str) -> Error {
        Error::Inconsistent {
            characteristic: self.characteristic,
            field,
            offset,
            reason,
        }
    }
}

/// A little-endian writer for encoding characteristic values.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes written so far, e.g. to compute a CRC over them.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// Appends a `uint8`.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a `sint8`.
    pub fn i8(&mut self, v: i8) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a little-endian `uint16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a little-endian `sint16`.
    pub fn i16(&mut self, v: i16) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends the low three bytes of `v` as a `uint24`.
    pub fn u24(&mut self, v: u32) -> &mut Self {
        let [a, b, c, _] = v.to_le_bytes();
        self.bytes(&[a, b, c])
    }

    /// Appends a little-endian `uint32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// The finished value.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_read_names_field_and_offset() {
        let mut r = Reader::new("Test", &[0x01, 0x02, 0x03]);
        assert_eq!(r.u16("a").ok(), Some(0x0201));
        let err = r.u16("b").err();
        assert_eq!(
            err,
            Some(Error::Truncated {
                characteristic: "Test",
                field: "b",
                offset: 2,
                needed: 2,
                available: 1
            })
        );
        // A failed read consumes nothing.
        assert_eq!(r.u8("c").ok(), Some(0x03));
        assert!(r.finish().is_ok());
    }

    #[test]
    fn leftover_bytes_are_an_error() {
        let mut r = Reader::new("Test", &[1, 2, 3]);
        let _ = r.u8("flags");
        assert!(matches!(
            r.finish(),
            Err(Error::Oversized {
                field: "flags",
                offset: 1,
                extra: 2,
                ..
            })
        ));
    }

    #[test]
    fn u24_round_trips() {
        let mut w = Writer::new();
        w.u24(0x00AB_CDEF);
        let bytes = w.into_vec();
        assert_eq!(bytes, vec![0xEF, 0xCD, 0xAB]);
        assert_eq!(Reader::new("T", &bytes).u24("x").ok(), Some(0x00AB_CDEF));
    }
}
