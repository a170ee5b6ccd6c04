//! The building blocks of the binary batch: varints, zig-zag, run-length
//! integer columns, delta and delta-of-delta transforms, and lossless
//! scaled value columns.
//!
//! Why these: CGM and strap streams are regular (times and sequences step
//! by a constant, so their delta-of-delta is a run of zeros that one token
//! carries) and their values move by a few units between readings (one
//! byte as a zig-zag delta). Values are stored as integer mantissas with a
//! per-column scale only when the encoder has checked, value by value,
//! that decoding gives back the identical `f64` bits; otherwise the column
//! falls back to raw IEEE 754 bits. That check, not an assumption about
//! sensors, is what makes the encoding lossless for any finite `f64`.

use crate::bytes::Reader;
use crate::error::{Error, Result};

/// Powers of ten exactly representable in an `f64` (all up to 10^22 are);
/// the decimal scales use the first ten.
const POW10: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// Largest mantissa magnitude: every integer up to 2^53 is exact in `f64`.
const MAX_MANTISSA: i64 = 1 << 53;

/// Scale byte: values are raw little-endian IEEE 754 doubles.
pub(crate) const SCALE_RAW: u8 = 0xff;
/// Scale byte base for binary scales: `0x40 + b` means value = m × 2^-b.
pub(crate) const SCALE_BINARY: u8 = 0x40;
/// Largest binary exponent tried (RR intervals need 10: 1/1024 s).
const MAX_BINARY_EXP: u8 = 32;

/// A [`Error::Wire`] at the reader's position.
pub(crate) fn malformed(r: &Reader<'_>, field: &'static str, reason: impl Into<String>) -> Error {
    Error::Wire {
        field,
        offset: Some(r.offset()),
        reason: reason.into(),
    }
}

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u128) {
    loop {
        // Masked to seven bits, so the cast keeps every bit.
        let low = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Reads an unsigned LEB128 varint of at most `max_bits` bits. Over-long
/// encodings (a final zero byte after the first) are refused so that every
/// value has exactly one encoding.
pub(crate) fn get_uvarint(r: &mut Reader<'_>, field: &'static str, max_bits: u32) -> Result<u128> {
    let start = r.offset();
    let mut value: u128 = 0;
    let mut shift: u32 = 0;
    loop {
        let byte = r.u8(field)?;
        let bits = u128::from(byte & 0x7f);
        if shift >= max_bits || (shift > 0 && bits >> (max_bits - shift).min(127) != 0) {
            return Err(Error::Wire {
                field,
                offset: Some(start),
                reason: format!("varint longer than {max_bits} bits"),
            });
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            if byte == 0 && shift > 0 {
                return Err(Error::Wire {
                    field,
                    offset: Some(start),
                    reason: "over-long varint".into(),
                });
            }
            return Ok(value);
        }
        shift += 7;
    }
}

/// Reads a varint that must fit a `u64`.
pub(crate) fn get_u64(r: &mut Reader<'_>, field: &'static str) -> Result<u64> {
    // 64 bits requested, so the value fits.
    get_uvarint(r, field, 64).map(|v| v as u64)
}

/// Reads a count, refusing one above `max`.
pub(crate) fn get_count(r: &mut Reader<'_>, field: &'static str, max: usize) -> Result<usize> {
    let at = r.offset();
    let n = get_u64(r, field)?;
    match usize::try_from(n) {
        Ok(n) if n <= max => Ok(n),
        _ => Err(Error::Wire {
            field,
            offset: Some(at),
            reason: format!("count above the limit of {max}"),
        }),
    }
}

/// Zig-zag: small magnitudes of either sign become small unsigned numbers.
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends a zig-zag varint.
pub(crate) fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, u128::from(zigzag(v)));
}

/// Reads a zig-zag varint.
pub(crate) fn get_ivarint(r: &mut Reader<'_>, field: &'static str) -> Result<i64> {
    get_u64(r, field).map(unzigzag)
}

/// Appends a run-length column of integers: each token is
/// `zigzag(value) << 1 | repeated`; a repeated token is followed by a
/// varint `run - 2` (runs of two or more).
pub(crate) fn put_column(out: &mut Vec<u8>, values: &[i64]) {
    let mut i = 0;
    while let Some(&v) = values.get(i) {
        let run = values[i..].iter().take_while(|&&x| x == v).count();
        let token = u128::from(zigzag(v)) << 1;
        if run >= 2 {
            put_uvarint(out, token | 1);
            put_uvarint(out, (run - 2) as u128);
        } else {
            put_uvarint(out, token);
        }
        i += run;
    }
}

/// Reads a run-length column of exactly `n` integers; a run that
/// overshoots `n` is malformed.
pub(crate) fn get_column(r: &mut Reader<'_>, field: &'static str, n: usize) -> Result<Vec<i64>> {
    // Runs let a few bytes stand for many values, so the count (already
    // bounded by the batch limit) rather than the input size bounds this.
    let mut out = Vec::with_capacity(n.min(1 << 16));
    while out.len() < n {
        let token = get_uvarint(r, field, 65)?;
        // The token has 65 bits at most, so the shifted value fits 64.
        let value = unzigzag((token >> 1) as u64);
        let run = if token & 1 == 1 {
            let at = r.offset();
            get_u64(r, field)?
                .checked_add(2)
                .ok_or_else(|| Error::Wire {
                    field,
                    offset: Some(at),
                    reason: "run length overflows".into(),
                })?
        } else {
            1
        };
        let left = (n - out.len()) as u64;
        if run > left {
            return Err(malformed(r, field, "run overshoots the column"));
        }
        // `run <= left <= n`, which is a usize.
        out.extend(std::iter::repeat_n(value, run as usize));
    }
    Ok(out)
}

/// First value, then differences (wrapping, so any `u64` sequence is
/// representable and comes back exactly).
pub(crate) fn delta(xs: &[i64]) -> Vec<i64> {
    let mut prev = 0i64;
    xs.iter()
        .map(|&x| {
            let d = x.wrapping_sub(prev);
            prev = x;
            d
        })
        .collect()
}

/// Inverse of [`delta`].
pub(crate) fn undelta(ds: &[i64]) -> Vec<i64> {
    let mut acc = 0i64;
    ds.iter()
        .map(|&d| {
            acc = acc.wrapping_add(d);
            acc
        })
        .collect()
}

/// First value, first difference, then differences of differences: a
/// regular series (constant step) becomes two numbers and a run of zeros.
pub(crate) fn delta_of_delta(xs: &[i64]) -> Vec<i64> {
    let d = delta(xs);
    let mut out = Vec::with_capacity(d.len());
    out.extend(d.first());
    out.extend(delta(d.get(1..).unwrap_or(&[])));
    out
}

/// Inverse of [`delta_of_delta`].
pub(crate) fn undelta_of_delta(dds: &[i64]) -> Vec<i64> {
    let mut d = Vec::with_capacity(dds.len());
    d.extend(dds.first());
    d.extend(undelta(dds.get(1..).unwrap_or(&[])));
    undelta(&d)
}

/// How a value column is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    /// value = m / 10^d, d in 0..=9.
    Decimal(u8),
    /// value = m × 2^-b, b in 1..=32.
    Binary(u8),
    /// Raw IEEE 754 bits.
    Raw,
}

impl Scale {
    fn byte(self) -> u8 {
        match self {
            Scale::Decimal(d) => d,
            Scale::Binary(b) => SCALE_BINARY + b,
            Scale::Raw => SCALE_RAW,
        }
    }

    fn from_byte(b: u8) -> Option<Scale> {
        match b {
            0..=9 => Some(Scale::Decimal(b)),
            SCALE_RAW => Some(Scale::Raw),
            _ if (SCALE_BINARY + 1..=SCALE_BINARY + MAX_BINARY_EXP).contains(&b) => {
                Some(Scale::Binary(b - SCALE_BINARY))
            }
            _ => None,
        }
    }

    /// The value a mantissa stands for (never for [`Scale::Raw`]).
    fn value(self, m: i64) -> f64 {
        match self {
            Scale::Decimal(d) => m as f64 / POW10.get(usize::from(d)).copied().unwrap_or(1.0),
            Scale::Binary(b) => m as f64 / (1u64 << b) as f64,
            Scale::Raw => f64::from_bits(m as u64),
        }
    }

    /// The mantissa for `v`, if decoding it gives back `v` bit for bit.
    fn mantissa(self, v: f64) -> Option<i64> {
        let scaled = match self {
            Scale::Decimal(d) => v * POW10.get(usize::from(d)).copied()?,
            Scale::Binary(b) => v * (1u64 << b) as f64,
            Scale::Raw => return None,
        };
        let m = scaled.round();
        // NaN fails `is_finite`, so it never reaches the cast.
        if !m.is_finite() || m.abs() > MAX_MANTISSA as f64 {
            return None;
        }
        // |m| <= 2^53, so the cast is exact.
        let m = m as i64;
        (self.value(m).to_bits() == v.to_bits()).then_some(m)
    }
}

/// The scale under which every value of the column survives the round
/// trip and the column is shortest: the smallest exact decimal exponent in
/// 0..=9 (CGMs report whole or one-decimal mg/dL) or the smallest exact
/// binary exponent in 1..=32 (RR intervals are k/1024 s, which take eight
/// decimals but ten bits), whichever encodes shorter; raw bits when
/// neither is exact.
fn choose_scale(values: &[f64]) -> (Scale, Vec<i64>) {
    fn first_exact(
        values: &[f64],
        mut scales: impl Iterator<Item = Scale>,
    ) -> Option<(Scale, Vec<i64>)> {
        scales.find_map(|scale| {
            let ms: Option<Vec<i64>> = values.iter().map(|&v| scale.mantissa(v)).collect();
            ms.map(|ms| (scale, ms))
        })
    }
    let decimal = first_exact(values, (0..=9u8).map(Scale::Decimal));
    let binary = first_exact(values, (1..=MAX_BINARY_EXP).map(Scale::Binary));
    let size = |ms: &[i64]| {
        let mut out = Vec::new();
        put_column(&mut out, &delta(ms));
        out.len()
    };
    match (decimal, binary) {
        (Some(d), Some(b)) => {
            if size(&b.1) < size(&d.1) {
                b
            } else {
                d
            }
        }
        (Some(d), None) => d,
        (None, Some(b)) => b,
        (None, None) => (Scale::Raw, Vec::new()),
    }
}

/// Appends a value column: the scale byte, then either the mantissas as a
/// delta run-length column, or raw little-endian doubles.
pub(crate) fn put_values(out: &mut Vec<u8>, values: &[f64]) {
    let (scale, mantissas) = choose_scale(values);
    out.push(scale.byte());
    if scale == Scale::Raw {
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    } else {
        put_column(out, &delta(&mantissas));
    }
}

/// Reads a value column of `n` finite values.
pub(crate) fn get_values(r: &mut Reader<'_>, field: &'static str, n: usize) -> Result<Vec<f64>> {
    let at = r.offset();
    let byte = r.u8(field)?;
    let scale = Scale::from_byte(byte).ok_or_else(|| Error::Wire {
        field,
        offset: Some(at),
        reason: format!("unknown value scale {byte:#04x}"),
    })?;
    if scale == Scale::Raw {
        let mut out = Vec::with_capacity(n.min(r.remaining() / 8 + 1));
        for _ in 0..n {
            let at = r.offset();
            let v = f64::from_le_bytes(r.array(field)?);
            if !v.is_finite() {
                return Err(Error::Wire {
                    field,
                    offset: Some(at),
                    reason: "not a finite number".into(),
                });
            }
            out.push(v);
        }
        return Ok(out);
    }
    let mantissas = undelta(&get_column(r, field, n)?);
    if mantissas
        .iter()
        .any(|m| m.unsigned_abs() > MAX_MANTISSA as u64)
    {
        return Err(malformed(r, field, "mantissa beyond 2^53"));
    }
    Ok(mantissas.into_iter().map(|m| scale.value(m)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(b: &[u8]) -> Reader<'_> {
        Reader::new("test", b)
    }

    #[test]
    fn varints_round_trip_at_their_edges_and_refuse_overlong_forms() {
        for v in [
            0u128,
            1,
            127,
            128,
            300,
            u128::from(u64::MAX),
            (1u128 << 65) - 1,
        ] {
            let mut out = Vec::new();
            put_uvarint(&mut out, v);
            assert_eq!(get_uvarint(&mut reader(&out), "x", 65).unwrap(), v);
        }
        // 0x80 0x00 is zero written in two bytes.
        assert!(get_uvarint(&mut reader(&[0x80, 0x00]), "x", 64).is_err());
        // 2^64 does not fit 64 bits.
        let mut out = Vec::new();
        put_uvarint(&mut out, 1u128 << 64);
        assert!(get_uvarint(&mut reader(&out), "x", 64).is_err());
        assert!(get_uvarint(&mut reader(&[0xff; 20]), "x", 65).is_err());
    }

    #[test]
    fn zigzag_maps_small_magnitudes_to_small_numbers() {
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        for v in [i64::MIN, -5, 0, 5, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn a_regular_series_becomes_two_tokens_and_one_run() {
        let times: Vec<i64> = (0..288)
            .map(|i| 1_700_000_000_000_000 + i * 300_000_000)
            .collect();
        let dod = delta_of_delta(&times);
        assert!(dod[2..].iter().all(|&d| d == 0));
        let mut out = Vec::new();
        put_column(&mut out, &dod);
        assert!(out.len() < 20, "{} bytes", out.len());
        let back = get_column(&mut reader(&out), "t", times.len()).unwrap();
        assert_eq!(undelta_of_delta(&back), times);
    }

    #[test]
    fn value_columns_pick_the_smallest_exact_scale_or_raw_bits() {
        let cases: [(&[f64], Scale); 5] = [
            (&[120.0, 121.0, 119.0], Scale::Decimal(0)),
            (&[5.5, 6.1, 7.0], Scale::Decimal(1)),
            (&[821.0 / 1024.0, 1.0, 0.5], Scale::Binary(10)),
            (&[std::f64::consts::PI], Scale::Raw),
            (&[-0.0], Scale::Raw),
        ];
        for (values, scale) in cases {
            assert_eq!(choose_scale(values).0, scale, "{values:?}");
            let mut out = Vec::new();
            put_values(&mut out, values);
            let back = get_values(&mut reader(&out), "v", values.len()).unwrap();
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&back), bits(values));
        }
    }

    #[test]
    fn a_run_past_the_column_end_is_refused() {
        let mut out = Vec::new();
        put_column(&mut out, &[7, 7, 7, 7]);
        assert!(get_column(&mut reader(&out), "c", 3).is_err());
    }
}
