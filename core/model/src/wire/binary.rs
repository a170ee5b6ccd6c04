//! The compact binary form of a [`Batch`] (`application/vnd.vigil.batch+binary; v=1`),
//! what phones send: columnar per stream group, delta-of-delta for
//! sequences and times, delta for values, run-length zig-zag varints, and
//! values as exact integer mantissas with a per-column scale. Compression
//! comes after, negotiated by `Content-Encoding` (see [`super::compress`]).
//!
//! The layout, byte by byte, is in `docs/protocol.md`. The decoder reads
//! through the bounds-checked [`Reader`], checks every count against the
//! batch limit before it allocates, refuses trailing bytes, and finally
//! applies [`Batch::validate`], so a decoded batch always re-encodes.

use chrono::DateTime;

use super::MAX_READINGS_PER_BATCH;
use super::columns::{
    delta_of_delta, get_column, get_count, get_ivarint, get_values, malformed, put_column,
    put_ivarint, put_uvarint, put_values, undelta_of_delta,
};
use super::message::{Batch, BatchId, HeldBack, MAX_RAW_BYTES, StreamReadings, WireReading};
use crate::bytes::Reader;
use crate::error::{Error, Result};
use crate::reading::{DeviceId, PatientId, Quality, Stream};

/// The name decoding errors carry.
pub const CHARACTERISTIC: &str = "vigil batch (binary)";

/// The first three bytes of every binary batch: `VGB`.
pub const MAGIC: [u8; 3] = *b"VGB";

const GROUP_SESSION: u8 = 0x01;
const GROUP_TOLERANCE: u8 = 0x02;
const GROUP_QUALITY: u8 = 0x04;
const GROUP_RAW: u8 = 0x08;
const GROUP_DEFINED: u8 = 0x0f;

const QUALITY_FLAGGED: i64 = 0x01;
const QUALITY_PERCENT: i64 = 0x02;

/// The stream's one-byte code in the binary form (fixed by the protocol).
pub fn stream_code(stream: Stream) -> u8 {
    match stream {
        Stream::Glucose => 1,
        Stream::MeterGlucose => 2,
        Stream::GlucoseTrend => 3,
        Stream::HeartRate => 4,
        Stream::RrInterval => 5,
        Stream::EnergyExpended => 6,
        Stream::Spo2 => 7,
        Stream::PulseRate => 8,
        Stream::Battery => 9,
    }
}

/// Inverse of [`stream_code`].
pub fn stream_from_code(code: u8) -> Option<Stream> {
    Stream::ALL.into_iter().find(|s| stream_code(*s) == code)
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    put_uvarint(out, text.len() as u128);
    out.extend_from_slice(text.as_bytes());
}

fn put_sequences(out: &mut Vec<u8>, seqs: impl Iterator<Item = u64>) {
    // Reinterpreting the bits keeps every u64; the transforms wrap.
    let xs: Vec<i64> = seqs.map(|s| s as i64).collect();
    put_column(out, &delta_of_delta(&xs));
}

fn put_times(out: &mut Vec<u8>, times: impl Iterator<Item = i64>) {
    let xs: Vec<i64> = times.collect();
    put_column(out, &delta_of_delta(&xs));
}

/// Encodes a batch. Fails with [`Error::Wire`] when the batch breaks
/// [`Batch::validate`]'s rules; every valid batch encodes, and decodes
/// back to an equal batch (values bit for bit).
pub fn encode(batch: &Batch) -> Result<Vec<u8>> {
    batch.validate()?;
    let mut out = Vec::with_capacity(64 + 4 * batch.reading_count());
    out.extend_from_slice(&MAGIC);
    put_uvarint(&mut out, u128::from(batch.v));
    out.extend_from_slice(&batch.id.0);
    put_text(&mut out, &batch.patient.0);
    put_text(&mut out, &batch.device.0);
    put_ivarint(&mut out, batch.sent_at.timestamp_micros());
    put_uvarint(&mut out, batch.streams.len() as u128);
    for g in &batch.streams {
        encode_group(&mut out, g);
    }
    Ok(out)
}

fn encode_group(out: &mut Vec<u8>, g: &StreamReadings) {
    let has_quality = g.readings.iter().any(|r| r.quality != Quality::default());
    let has_raw = g.readings.iter().any(|r| r.raw.is_some());
    let mut flags = 0;
    for (on, bit) in [
        (g.session.is_some(), GROUP_SESSION),
        (g.tolerance.is_some(), GROUP_TOLERANCE),
        (has_quality, GROUP_QUALITY),
        (has_raw, GROUP_RAW),
    ] {
        if on {
            flags |= bit;
        }
    }
    out.push(stream_code(g.stream));
    out.push(flags);
    if let Some(s) = g.session {
        put_ivarint(out, s);
    }
    out.extend_from_slice(&g.characteristic.to_le_bytes());
    if let Some(t) = g.tolerance {
        out.extend_from_slice(&t.to_le_bytes());
    }
    let n = g.readings.len();
    put_uvarint(out, n as u128);
    if n > 0 {
        put_sequences(out, g.readings.iter().map(|r| r.seq));
        put_times(out, g.readings.iter().map(|r| r.time.timestamp_micros()));
        let values: Vec<f64> = g.readings.iter().map(|r| r.value).collect();
        put_values(out, &values);
        if has_quality {
            let flags: Vec<i64> = g
                .readings
                .iter()
                .map(|r| {
                    let mut q = 0;
                    if r.quality.flagged {
                        q |= QUALITY_FLAGGED;
                    }
                    if r.quality.percent.is_some() {
                        q |= QUALITY_PERCENT;
                    }
                    q
                })
                .collect();
            put_column(out, &flags);
            let percents: Vec<f64> = g
                .readings
                .iter()
                .filter_map(|r| r.quality.percent)
                .collect();
            if !percents.is_empty() {
                put_values(out, &percents);
            }
        }
        if has_raw {
            // Length + 1 per reading (0 = no raw bytes): mostly one run.
            let lens: Vec<i64> = g
                .readings
                .iter()
                .map(|r| r.raw.as_ref().map_or(0, |b| b.len() as i64 + 1))
                .collect();
            put_column(out, &lens);
            for r in &g.readings {
                if let Some(b) = &r.raw {
                    out.extend_from_slice(b);
                }
            }
        }
    }
    put_uvarint(out, g.held_back.len() as u128);
    if !g.held_back.is_empty() {
        put_sequences(out, g.held_back.iter().map(|h| h.seq));
        put_times(out, g.held_back.iter().map(|h| h.time.timestamp_micros()));
    }
}

fn get_text(r: &mut Reader<'_>, field: &'static str) -> Result<String> {
    let n = get_count(r, field, super::MAX_TEXT_BYTES)?;
    let at = r.offset();
    let bytes = r.take(field, n)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::Wire {
        field,
        offset: Some(at),
        reason: "not UTF-8".into(),
    })
}

fn get_time_column(
    r: &mut Reader<'_>,
    field: &'static str,
    n: usize,
) -> Result<Vec<DateTime<chrono::Utc>>> {
    let at = r.offset();
    let micros = undelta_of_delta(&get_column(r, field, n)?);
    micros
        .into_iter()
        .map(|us| {
            DateTime::from_timestamp_micros(us).ok_or_else(|| Error::Wire {
                field,
                offset: Some(at),
                reason: "time out of range".into(),
            })
        })
        .collect()
}

fn get_seq_column(r: &mut Reader<'_>, field: &'static str, n: usize) -> Result<Vec<u64>> {
    Ok(undelta_of_delta(&get_column(r, field, n)?)
        .into_iter()
        .map(|s| s as u64)
        .collect())
}

/// Decodes a binary batch. Never panics; any malformed, truncated,
/// oversized or unsupported input is an [`Error::Wire`],
/// [`Error::Truncated`] or [`Error::Oversized`] naming the field and byte
/// offset.
pub fn decode(bytes: &[u8]) -> Result<Batch> {
    decode_within(bytes, MAX_READINGS_PER_BATCH)
}

/// [`decode`] that stops before materialising more than `max_readings`
/// readings and held-back readings in all (at most
/// [`MAX_READINGS_PER_BATCH`]). Run-length columns let a few bytes claim
/// hundreds of thousands of readings, so a receiver bounds the work a body
/// may cause by its own limit (and the body's size) before any is done.
/// Past the limit: [`Error::Wire`] with field `"readings"`, the one field
/// name that always means "too many readings".
pub fn decode_within(bytes: &[u8], max_readings: usize) -> Result<Batch> {
    let mut r = Reader::new(CHARACTERISTIC, bytes);
    if r.array::<3>("magic")? != MAGIC {
        return Err(Error::Wire {
            field: "magic",
            offset: Some(0),
            reason: "not a Vigil binary batch".into(),
        });
    }
    let at = r.offset();
    let v = u16::try_from(super::columns::get_u64(&mut r, "v")?).map_err(|_| Error::Wire {
        field: "v",
        offset: Some(at),
        reason: "version beyond 65535".into(),
    })?;
    // Refuse a newer layout before reading fields it may have changed.
    super::message::check_version(v).map_err(|e| match e {
        Error::Wire { field, reason, .. } => Error::Wire {
            field,
            offset: Some(at),
            reason,
        },
        other => other,
    })?;
    let id = BatchId(r.array("id")?);
    let patient = PatientId(get_text(&mut r, "patient")?);
    let device = DeviceId(get_text(&mut r, "device")?);
    let at = r.offset();
    let sent_at =
        DateTime::from_timestamp_micros(get_ivarint(&mut r, "sent_at")?).ok_or_else(|| {
            Error::Wire {
                field: "sent_at",
                offset: Some(at),
                reason: "time out of range".into(),
            }
        })?;
    // A group takes at least five bytes, which bounds the allocation.
    let most = r.remaining() / 5;
    let groups = get_count(&mut r, "groups", most)?;
    let mut batch = Batch {
        v,
        id,
        patient,
        device,
        sent_at,
        streams: Vec::with_capacity(groups),
    };
    let mut budget = max_readings.min(MAX_READINGS_PER_BATCH);
    for _ in 0..groups {
        let g = decode_group(&mut r, &mut budget)?;
        batch.streams.push(g);
    }
    r.finish()?;
    batch.validate()?;
    Ok(batch)
}

/// Reads a count of readings (or held-back readings) and takes it from the
/// batch's remaining budget, refusing a count beyond it.
fn take_budget(r: &mut Reader<'_>, budget: &mut usize) -> Result<usize> {
    let at = r.offset();
    let n = super::columns::get_u64(r, "readings")?;
    match usize::try_from(n) {
        Ok(n) if n <= *budget => {
            *budget -= n;
            Ok(n)
        }
        _ => Err(Error::Wire {
            field: "readings",
            offset: Some(at),
            reason: "more readings than the receiver's limit for one batch".into(),
        }),
    }
}

fn decode_group(r: &mut Reader<'_>, budget: &mut usize) -> Result<StreamReadings> {
    let at = r.offset();
    let code = r.u8("stream")?;
    let stream = stream_from_code(code).ok_or_else(|| Error::Wire {
        field: "stream",
        offset: Some(at),
        reason: format!("unknown stream code {code}"),
    })?;
    let at = r.offset();
    let flags = r.u8("group_flags")?;
    if flags & !GROUP_DEFINED != 0 {
        return Err(r.reserved("group_flags", at, u32::from(flags)));
    }
    let session = if flags & GROUP_SESSION != 0 {
        Some(get_ivarint(r, "session")?)
    } else {
        None
    };
    let characteristic = r.u16("characteristic")?;
    let tolerance = if flags & GROUP_TOLERANCE != 0 {
        Some(f64::from_le_bytes(r.array("tolerance")?))
    } else {
        None
    };
    let n = take_budget(r, budget)?;
    let mut readings = Vec::with_capacity(n.min(1 << 16));
    if n > 0 {
        let seqs = get_seq_column(r, "seq", n)?;
        let times = get_time_column(r, "time", n)?;
        let values = get_values(r, "value", n)?;
        let mut qualities = vec![Quality::default(); n];
        if flags & GROUP_QUALITY != 0 {
            let q = get_column(r, "quality", n)?;
            if q.iter().any(|&f| !(0..=3).contains(&f)) {
                return Err(malformed(r, "quality", "undefined quality bits"));
            }
            let with_percent = q.iter().filter(|&&f| f & QUALITY_PERCENT != 0).count();
            let mut percents = if with_percent > 0 {
                get_values(r, "quality_percent", with_percent)?.into_iter()
            } else {
                Vec::new().into_iter()
            };
            for (slot, f) in qualities.iter_mut().zip(q) {
                slot.flagged = f & QUALITY_FLAGGED != 0;
                if f & QUALITY_PERCENT != 0 {
                    slot.percent = percents.next();
                }
            }
        }
        let mut raws: Vec<Option<Vec<u8>>> = vec![None; n];
        if flags & GROUP_RAW != 0 {
            let lens = get_column(r, "raw_lengths", n)?;
            for (slot, len) in raws.iter_mut().zip(lens) {
                if len == 0 {
                    continue;
                }
                let len = usize::try_from(len - 1)
                    .ok()
                    .filter(|&l| l <= MAX_RAW_BYTES)
                    .ok_or_else(|| malformed(r, "raw_lengths", "raw length out of range"))?;
                *slot = Some(r.take("raw", len)?.to_vec());
            }
        }
        let columns = seqs.into_iter().zip(times).zip(values);
        for ((((seq, time), value), quality), raw) in columns.zip(qualities).zip(raws) {
            readings.push(WireReading {
                seq,
                time,
                value,
                quality,
                raw,
            });
        }
    }
    let h = take_budget(r, budget)?;
    let mut held_back = Vec::with_capacity(h.min(1 << 16));
    if h > 0 {
        let seqs = get_seq_column(r, "held_back.seq", h)?;
        let times = get_time_column(r, "held_back.time", h)?;
        held_back.extend(
            seqs.into_iter()
                .zip(times)
                .map(|(seq, time)| HeldBack { seq, time }),
        );
    }
    Ok(StreamReadings {
        stream,
        session,
        characteristic,
        tolerance,
        readings,
        held_back,
    })
}
