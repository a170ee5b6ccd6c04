//! CGM Measurement (0x2AA7, CGMS 1.0.1 §3.1): the glucose readings a sensor
//! notifies, one or more records back to back in one notification.
//!
//! Record layout (CGMS §3.1.1 and the characteristic definition): Size
//! (uint8, the whole record including Size and CRC), Flags (uint8), CGM
//! Glucose Concentration (SFLOAT mg/dL), Time Offset (uint16 minutes), the
//! Sensor Status Annunciation octets the flags announce (Status, Cal/Temp,
//! Warning: least significant octet first, as in the 24-bit field the CGM
//! Status characteristic carries), CGM Trend Information (SFLOAT
//! (mg/dL)/min), CGM Quality (SFLOAT %), E2E-CRC (uint16) when supported.
//!
//! Some firmware (e.g. Nordic's reference server) writes the Warning octet
//! first; the characteristic definition lists the field LSO to MSO with the
//! Status bits at 0-7, so we follow the specification and say so here.
//!
//! Framing: the Size field frames each record, so the records of one
//! notification can be decoded one by one ([`Records`]). A record whose CRC
//! fails, or whose flags hold reserved bits, is an error for that record
//! only: its Size still frames it and the next record is decoded. A Size
//! below the minimum, past the end of the notification, or disagreeing with
//! the flags means the framing itself is lost, so iteration stops rather
//! than guessing where the next record starts.

use super::status::read_octet;
use super::{CalTempOctet, StatusOctet, WarningOctet, append_crc, read_checked_crc};
use crate::codec::bytes::{ReadFloat, Reader, WriteFloat, Writer};
use crate::codec::float::SFloat;
use crate::{Error, Result};

const TREND: u8 = 1 << 0;
const QUALITY: u8 = 1 << 1;
const WARNING: u8 = 1 << 5;
const CAL_TEMP: u8 = 1 << 6;
const STATUS: u8 = 1 << 7;
const DEFINED_FLAGS: u8 = TREND | QUALITY | WARNING | CAL_TEMP | STATUS;
/// Size, Flags, Glucose Concentration and Time Offset.
const MIN_SIZE: usize = 6;

/// One CGM Measurement record.
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CgmMeasurement {
    /// CGM Glucose Concentration in mg/dL, raw (specials survive).
    pub glucose: SFloat,
    /// Minutes since the session start.
    pub time_offset_min: u16,
    /// Status octet of the annunciation, when the flags announce it.
    pub status: Option<StatusOctet>,
    /// Cal/Temp octet of the annunciation, when announced.
    pub cal_temp: Option<CalTempOctet>,
    /// Warning octet of the annunciation, when announced.
    pub warning: Option<WarningOctet>,
    /// CGM Trend Information in (mg/dL)/min, when present.
    pub trend: Option<SFloat>,
    /// CGM Quality in %, when present.
    pub quality: Option<SFloat>,
    /// The E2E-CRC carried (checked on decode); on encode `Some(_)` means
    /// "append the CRC", whose value is always computed afresh.
    pub crc: Option<u16>,
}

/// What the iterator does after a record.
enum Next {
    /// The record was framed correctly; the next one starts here.
    At(usize),
    /// Framing is lost; no further record can be trusted.
    Stop,
}

impl CgmMeasurement {
    /// Characteristic name carried by errors.
    pub const CHARACTERISTIC: &'static str = "CGM Measurement";

    /// The glucose in mg/dL, or `None` for a special value (NaN, NRes, ±INF).
    pub fn glucose_mg_dl(&self) -> Option<f64> {
        self.glucose.to_f64()
    }

    /// The trend in (mg/dL)/min, if present and a number.
    pub fn trend_mg_dl_per_min(&self) -> Option<f64> {
        self.trend.and_then(SFloat::to_f64)
    }

    /// The quality in %, if present and a number.
    pub fn quality_percent(&self) -> Option<f64> {
        self.quality.and_then(SFloat::to_f64)
    }

    /// The Flags octet this record travels with.
    pub fn flags(&self) -> u8 {
        let mut flags = 0;
        for (present, bit) in [
            (self.trend.is_some(), TREND),
            (self.quality.is_some(), QUALITY),
            (self.warning.is_some(), WARNING),
            (self.cal_temp.is_some(), CAL_TEMP),
            (self.status.is_some(), STATUS),
        ] {
            if present {
                flags |= bit;
            }
        }
        flags
    }

    /// The Size field this record travels with (6 to 15 bytes).
    pub fn size(&self) -> u8 {
        // At most 15, so the cast cannot truncate.
        expected_size(self.flags(), self.crc.is_some()) as u8
    }

    /// Decodes a notification holding exactly one record.
    pub fn decode(bytes: &[u8], crc: bool) -> Result<Self> {
        let (record, _) = decode_record(bytes, 0, crc);
        let record = record?;
        let mut r = Reader::new(Self::CHARACTERISTIC, bytes);
        // Positions the reader after the record so `finish` reports the
        // first surplus byte with its true offset.
        r.take("record", usize::from(record.size()))?;
        r.finish()?;
        Ok(record)
    }

    /// Decodes every record of a notification, failing on the first bad
    /// one. An empty notification is an error (it holds no Size field).
    pub fn decode_notification(bytes: &[u8], crc: bool) -> Result<Vec<Self>> {
        if bytes.is_empty() {
            // Let the reader build the error so it names `size` at byte 0.
            Reader::new(Self::CHARACTERISTIC, bytes).u8("size")?;
        }
        Self::records(bytes, crc).collect()
    }

    /// Iterates over the records of a notification, yielding each record or
    /// its error; after a framing error it yields that error and stops.
    /// Error offsets are relative to the start of the notification.
    pub fn records(bytes: &[u8], crc: bool) -> Records<'_> {
        Records {
            bytes,
            pos: 0,
            crc,
            done: false,
        }
    }

    /// Encodes this record (Size and Flags derived from the fields present).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(self.size())
            .u8(self.flags())
            .sfloat(self.glucose)
            .u16(self.time_offset_min);
        if let Some(o) = self.status {
            w.u8(o.bits());
        }
        if let Some(o) = self.cal_temp {
            w.u8(o.bits());
        }
        if let Some(o) = self.warning {
            w.u8(o.bits());
        }
        if let Some(t) = self.trend {
            w.sfloat(t);
        }
        if let Some(q) = self.quality {
            w.sfloat(q);
        }
        if self.crc.is_some() {
            append_crc(&mut w);
        }
        w.into_vec()
    }

    /// Encodes several records back to back as one notification.
    pub fn encode_notification(records: &[Self]) -> Vec<u8> {
        records.iter().flat_map(Self::encode).collect()
    }
}

/// Iterator over the records of one CGM Measurement notification (see
/// [`CgmMeasurement::records`]).
#[derive(Debug, serde::Serialize, Clone)]
pub struct Records<'a> {
    bytes: &'a [u8],
    pos: usize,
    crc: bool,
    done: bool,
}

impl Iterator for Records<'_> {
    type Item = Result<CgmMeasurement>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.bytes.len() {
            return None;
        }
        let (record, next) = decode_record(self.bytes, self.pos, self.crc);
        match next {
            Next::At(end) => self.pos = end,
            Next::Stop => self.done = true,
        }
        Some(record)
    }
}

fn expected_size(flags: u8, crc: bool) -> usize {
    let octets = [WARNING, CAL_TEMP, STATUS]
        .iter()
        .filter(|&&bit| flags & bit != 0)
        .count();
    let floats = [TREND, QUALITY]
        .iter()
        .filter(|&&bit| flags & bit != 0)
        .count();
    MIN_SIZE + octets + 2 * floats + if crc { 2 } else { 0 }
}

/// Decodes the record starting at `start` of `buf`.
fn decode_record(buf: &[u8], start: usize, crc: bool) -> (Result<CgmMeasurement>, Next) {
    let ch = CgmMeasurement::CHARACTERISTIC;
    let inconsistent = |reason| Error::Inconsistent {
        characteristic: ch,
        field: "size",
        offset: start,
        reason,
    };
    let size = match buf.get(start) {
        Some(&size) => usize::from(size),
        None => {
            let mut r = Reader::new(ch, buf);
            // Skipping to `start` fails only if `start` is past the end; the
            // size read then reports the truncation either way.
            let err = r
                .take("previous records", start)
                .and_then(|_| r.u8("size"))
                .err()
                .map(Error::from);
            return (
                Err(err.unwrap_or_else(|| inconsistent("no record here"))),
                Next::Stop,
            );
        }
    };
    let min = MIN_SIZE + if crc { 2 } else { 0 };
    if size < min {
        return (
            Err(inconsistent(
                "record size is below the minimum for this CRC setting",
            )),
            Next::Stop,
        );
    }
    let end = start + size;
    let Some(record_buf) = buf.get(..end) else {
        return (
            Err(inconsistent("record runs past the end of the notification")),
            Next::Stop,
        );
    };
    // The flags sit right after Size and the size check above guarantees
    // the byte exists.
    let flags = buf.get(start + 1).copied().unwrap_or_default();
    if flags & !DEFINED_FLAGS != 0 {
        return (
            Err(Error::Reserved {
                characteristic: ch,
                field: "flags",
                offset: start + 1,
                value: u32::from(flags),
            }),
            Next::At(end),
        );
    }
    if size != expected_size(flags, crc) {
        return (
            Err(inconsistent(
                "record size disagrees with its flags and the CRC setting",
            )),
            Next::Stop,
        );
    }
    (read_fields(record_buf, start, flags, crc), Next::At(end))
}

/// Reads the fields of a record whose framing is already proven:
/// `record_buf` ends exactly where the record ends.
fn read_fields(record_buf: &[u8], start: usize, flags: u8, crc: bool) -> Result<CgmMeasurement> {
    let mut r = Reader::new(CgmMeasurement::CHARACTERISTIC, record_buf);
    r.take("previous records", start)?;
    r.u8("size")?;
    r.u8("flags")?;
    let glucose = r.sfloat("glucose_concentration")?;
    let time_offset_min = r.u16("time_offset")?;
    let status = (flags & STATUS != 0)
        .then(|| read_octet(&mut r, "status_octet", StatusOctet::from_bits))
        .transpose()?;
    let cal_temp = (flags & CAL_TEMP != 0)
        .then(|| read_octet(&mut r, "cal_temp_octet", CalTempOctet::from_bits))
        .transpose()?;
    let warning = (flags & WARNING != 0)
        .then(|| read_octet(&mut r, "warning_octet", WarningOctet::from_bits))
        .transpose()?;
    let trend = (flags & TREND != 0)
        .then(|| r.sfloat("trend"))
        .transpose()?;
    let quality = (flags & QUALITY != 0)
        .then(|| r.sfloat("quality"))
        .transpose()?;
    let crc = crc
        .then(|| read_checked_crc(&mut r, record_buf, start))
        .transpose()?;
    r.finish()?;
    Ok(CgmMeasurement {
        glucose,
        time_offset_min,
        status,
        cal_temp,
        warning,
        trend,
        quality,
        crc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::crc::e2e_crc;
    use crate::codec::float::Special;
    use proptest::prelude::*;

    fn with_crc(mut v: Vec<u8>) -> Vec<u8> {
        let crc = e2e_crc(&v);
        v.extend_from_slice(&crc.to_le_bytes());
        v
    }

    // CGMS §3.1.1: the minimal record is Size, Flags, Glucose (SFLOAT),
    // Time Offset (uint16) = 6 bytes.
    #[test]
    fn minimal_record_decodes_glucose_and_time_offset() {
        // Size 6, no flags, 120 mg/dL (0x0078), time offset 5 min.
        let bytes = [0x06, 0x00, 0x78, 0x00, 0x05, 0x00];
        let m = CgmMeasurement::decode(&bytes, false).unwrap();
        assert_eq!(m.glucose_mg_dl(), Some(120.0));
        assert_eq!(m.time_offset_min, 5);
        assert_eq!(m.status, None);
        assert_eq!(m.trend, None);
        assert_eq!(m.crc, None);
        assert_eq!(m.encode(), bytes);
    }

    // CGMS §3.1.1: all optional fields, in order: Status, Cal/Temp and
    // Warning octets (LSO first), Trend, Quality, then the E2E-CRC.
    #[test]
    fn full_record_decodes_every_field_in_specification_order() {
        let bytes = with_crc(vec![
            0x0F, // size 15
            0xE3, // trend, quality, warning, cal/temp, status
            0xB4, 0xF4, // 0xF4B4: exponent -1, mantissa 1204 -> 120.4 mg/dL
            0x2C, 0x01, // 300 min
            0x01, // status: session stopped
            0x08, // cal/temp: calibration required
            0x04, // warning: below hypo
            0xF6, 0xFF, // 0xFFF6: exponent -1, mantissa -10 -> -1.0 mg/dL/min
            0x5A, 0x00, // 90 %
        ]);
        let m = CgmMeasurement::decode(&bytes, true).unwrap();
        assert_eq!(m.glucose_mg_dl(), Some(120.4));
        assert_eq!(m.time_offset_min, 300);
        assert!(m.status.unwrap().session_stopped());
        assert!(m.cal_temp.unwrap().calibration_required());
        assert!(m.warning.unwrap().below_hypo());
        assert_eq!(m.trend_mg_dl_per_min(), Some(-1.0));
        assert_eq!(m.quality_percent(), Some(90.0));
        assert_eq!(m.crc, Some(e2e_crc(&bytes[..13])));
        assert_eq!(m.encode(), bytes);
    }

    #[test]
    fn nan_glucose_is_kept_as_a_marker_not_a_number() {
        let bytes = [0x06, 0x00, 0xFF, 0x07, 0x00, 0x00];
        let m = CgmMeasurement::decode(&bytes, false).unwrap();
        assert_eq!(m.glucose.special(), Some(Special::NaN));
        assert_eq!(m.glucose_mg_dl(), None);
        assert_eq!(m.encode(), bytes);
    }

    #[test]
    fn several_records_in_one_notification_all_decode() {
        let a = [0x06, 0x00, 0x64, 0x00, 0x00, 0x00];
        let b = [0x08, 0x01, 0x6E, 0x00, 0x05, 0x00, 0x02, 0x00];
        let bytes = [&a[..], &b[..]].concat();
        let all = CgmMeasurement::decode_notification(&bytes, false).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].glucose_mg_dl(), Some(100.0));
        assert_eq!(all[1].glucose_mg_dl(), Some(110.0));
        assert_eq!(all[1].trend_mg_dl_per_min(), Some(2.0));
        assert_eq!(CgmMeasurement::encode_notification(&all), bytes);
    }

    #[test]
    fn crc_failure_loses_only_that_record_in_the_iterator() {
        let a = with_crc(vec![0x08, 0x00, 0x64, 0x00, 0x00, 0x00]);
        let mut b = with_crc(vec![0x08, 0x00, 0x6E, 0x00, 0x05, 0x00]);
        b[2] ^= 0x01; // corrupt the glucose after the CRC was computed
        let c = with_crc(vec![0x08, 0x00, 0x78, 0x00, 0x0A, 0x00]);
        let bytes = [a, b, c].concat();
        let results: Vec<_> = CgmMeasurement::records(&bytes, true).collect();
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].as_ref().unwrap().time_offset_min, 0);
        assert!(matches!(
            results[1],
            Err(Error::CrcMismatch { offset: 14, .. })
        ));
        assert_eq!(results[2].as_ref().unwrap().time_offset_min, 10);
        // The strict decoder refuses the whole notification.
        assert!(matches!(
            CgmMeasurement::decode_notification(&bytes, true),
            Err(Error::CrcMismatch { offset: 14, .. })
        ));
    }

    #[test]
    fn size_disagreeing_with_flags_names_size_and_stops_iteration() {
        // Second record: size 7 but flags announce nothing (6 expected).
        let bytes = [
            0x06, 0x00, 0x64, 0x00, 0x00, 0x00, //
            0x07, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, //
            0x06, 0x00, 0x64, 0x00, 0x00, 0x00,
        ];
        let results: Vec<_> = CgmMeasurement::records(&bytes, false).collect();
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok());
        assert_eq!(
            results[1],
            Err(Error::Inconsistent {
                characteristic: "CGM Measurement",
                field: "size",
                offset: 6,
                reason: "record size disagrees with its flags and the CRC setting"
            })
        );
    }

    #[test]
    fn crc_setting_mismatch_is_a_size_inconsistency() {
        // A record with a CRC read as if the sensor had none.
        let bytes = with_crc(vec![0x08, 0x00, 0x64, 0x00, 0x00, 0x00]);
        assert!(matches!(
            CgmMeasurement::decode(&bytes, false),
            Err(Error::Inconsistent {
                field: "size",
                offset: 0,
                ..
            })
        ));
    }

    #[test]
    fn size_below_minimum_or_past_end_stops_iteration() {
        let bytes = [0x05, 0x00, 0x64, 0x00, 0x00, 0x00];
        let results: Vec<_> = CgmMeasurement::records(&bytes, false).collect();
        assert_eq!(results.len(), 1);
        assert!(matches!(
            results[0],
            Err(Error::Inconsistent {
                field: "size",
                offset: 0,
                ..
            })
        ));
        // Size 8 with CRC, but only 7 bytes in the notification after a
        // good first record.
        let bytes = [
            0x06, 0x00, 0x64, 0x00, 0x00, 0x00, 0x08, 0x00, 0x64, 0x00, 0x00,
        ];
        let results: Vec<_> = CgmMeasurement::records(&bytes, false).collect();
        assert_eq!(results.len(), 2);
        assert!(matches!(
            results[1],
            Err(Error::Inconsistent {
                field: "size",
                offset: 6,
                ..
            })
        ));
    }

    #[test]
    fn reserved_flag_bit_is_rejected_but_size_still_frames_the_next_record() {
        let bytes = [
            0x06, 0x04, 0x64, 0x00, 0x00, 0x00, // bit 2 reserved
            0x06, 0x00, 0x6E, 0x00, 0x05, 0x00,
        ];
        let results: Vec<_> = CgmMeasurement::records(&bytes, false).collect();
        assert_eq!(
            results[0],
            Err(Error::Reserved {
                characteristic: "CGM Measurement",
                field: "flags",
                offset: 1,
                value: 0x04
            })
        );
        assert_eq!(results[1].as_ref().unwrap().glucose_mg_dl(), Some(110.0));
    }

    #[test]
    fn reserved_annunciation_bit_names_its_octet() {
        // Status octet with reserved bit 7 set.
        let bytes = [0x07, 0x80, 0x64, 0x00, 0x00, 0x00, 0x80];
        assert_eq!(
            CgmMeasurement::decode(&bytes, false),
            Err(Error::Reserved {
                characteristic: "CGM Measurement",
                field: "status_octet",
                offset: 6,
                value: 0x80
            })
        );
    }

    #[test]
    fn empty_notification_is_truncated_at_size_and_single_decode_rejects_extras() {
        assert!(matches!(
            CgmMeasurement::decode_notification(&[], false),
            Err(Error::Truncated {
                field: "size",
                offset: 0,
                ..
            })
        ));
        let bytes = [0x06, 0x00, 0x64, 0x00, 0x00, 0x00, 0x06];
        assert!(matches!(
            CgmMeasurement::decode(&bytes, false),
            Err(Error::Oversized {
                offset: 6,
                extra: 1,
                ..
            })
        ));
    }

    fn sfloat() -> impl Strategy<Value = SFloat> {
        any::<u16>().prop_map(SFloat::from_raw)
    }

    fn measurement() -> impl Strategy<Value = CgmMeasurement> {
        (
            sfloat(),
            any::<u16>(),
            proptest::option::of((0u8..=0x3F).prop_map(|b| StatusOctet::from_bits(b).unwrap())),
            proptest::option::of((0u8..=0x3F).prop_map(|b| CalTempOctet::from_bits(b).unwrap())),
            proptest::option::of(any::<u8>().prop_map(|b| WarningOctet::from_bits(b).unwrap())),
            proptest::option::of(sfloat()),
            proptest::option::of(sfloat()),
        )
            .prop_map(|(glucose, t, status, cal_temp, warning, trend, quality)| {
                CgmMeasurement {
                    glucose,
                    time_offset_min: t,
                    status,
                    cal_temp,
                    warning,
                    trend,
                    quality,
                    crc: None,
                }
            })
    }

    proptest! {
        #[test]
        fn measurement_round_trips(m in measurement(), crc in any::<bool>()) {
            let m = CgmMeasurement { crc: crc.then_some(0), ..m };
            let bytes = m.encode();
            prop_assert_eq!(bytes.len(), usize::from(m.size()));
            let back = CgmMeasurement::decode(&bytes, crc).unwrap();
            let expected_crc = crc.then(|| e2e_crc(&bytes[..bytes.len() - 2]));
            prop_assert_eq!(back, CgmMeasurement { crc: expected_crc, ..m });
        }

        #[test]
        fn notification_round_trips(ms in proptest::collection::vec(measurement(), 1..5), crc in any::<bool>()) {
            let ms: Vec<_> = ms.into_iter().map(|m| CgmMeasurement { crc: crc.then_some(0), ..m }).collect();
            let bytes = CgmMeasurement::encode_notification(&ms);
            let back = CgmMeasurement::decode_notification(&bytes, crc).unwrap();
            prop_assert_eq!(back.len(), ms.len());
            prop_assert_eq!(CgmMeasurement::encode_notification(&back), bytes);
        }

        #[test]
        fn measurement_decode_never_panics_and_reencodes_exactly(
            bytes in proptest::collection::vec(any::<u8>(), 0..40),
            crc in any::<bool>(),
        ) {
            if let Ok(ms) = CgmMeasurement::decode_notification(&bytes, crc) {
                prop_assert_eq!(CgmMeasurement::encode_notification(&ms), bytes.clone());
            }
            // The iterator always terminates and yields at most one item per
            // minimal record.
            let n = CgmMeasurement::records(&bytes, crc).count();
            prop_assert!(n <= bytes.len() / MIN_SIZE + 1);
        }

        #[test]
        fn single_bit_flip_under_crc_never_yields_a_different_reading(
            m in measurement(), bit in 0usize..120,
        ) {
            let m = CgmMeasurement { crc: Some(0), ..m };
            let mut bytes = m.encode();
            let bit = bit % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(CgmMeasurement::decode(&bytes, true).is_err());
        }
    }
}
