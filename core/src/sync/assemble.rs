//! Batch assembly and acknowledgement bookkeeping.
//!
//! A buffer batch ([`crate::store::InFlightBatch`]) holds unsent readings of one
//! stream, possibly of several devices; a wire batch holds one device's. So
//! one buffer batch becomes one [`WireBatch`] per (patient, device), each
//! remembering which buffer rows it carries, and [`settle`] marks exactly
//! the rows an acknowledgement covers. Whatever no acknowledgement covers
//! is rolled back by the engine and goes again.
//!
//! Trend streams are reduced ([`Reduction`]): the readings the reducer
//! holds back travel as `held_back` (sequence and time only) under the
//! stream's tolerance, and the cloud reconstructs them. With
//! [`Reduction::Streaming`] (the default) the decisions were made before
//! the batch was taken, segment by segment, and the buffer put a kept
//! reading after every held-back one in the batch
//! ([`Buffer::next_decided_batch`]); the kept one before it travelled in
//! this batch or an earlier one. With the per-batch modes the first and
//! last readings of every group are always sent kept.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::model::{DeviceId, PatientId, Sample, Stream};
use crate::reduce::{Policy, ReducerConfig, reduce};
use crate::store::{Buffer, StoredReading};
use crate::wire::{Batch, BatchAck, BatchId};

/// How trend streams are reduced before they travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// Streaming reduction: before each batch the engine decides every
    /// trend reading whose segment has closed
    /// ([`super::decide_closed_segments`], state kept in the buffer across
    /// batches and restarts) and sends decided readings only, held-back
    /// ones as such; the open tail waits for a later batch.
    Streaming,
    /// The engine runs the bounded-error reducer
    /// ([`ReducerConfig::for_stream`]) over each batch's readings, keeping
    /// every reading at the time of an alert in the outbox. Held marks set
    /// by others are ignored (the reducer decides afresh).
    AtSync,
    /// The pipeline marked held-back readings itself
    /// ([`Buffer::insert_and_mark_held`], under
    /// [`ReducerConfig::for_stream`]'s tolerance); the engine sends them as
    /// held back and everything else as kept.
    Marked,
    /// Lossless: every reading is sent kept.
    Off,
}

/// One wire batch and the buffer rows it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct WireBatch {
    /// The message (its id is the idempotency key of every retry).
    pub batch: Batch,
    /// (row id, stream, session, sequence) of every reading in it, kept or
    /// held.
    pub rows: Vec<(i64, Stream, Option<i64>, u64)>,
}

/// Joins wire batches of the same (patient, device) into one, keeping the
/// first one's id: a pass's streams (glucose and its trend, heart rate and
/// its RR intervals) then share one request per device, and the radio
/// wakes once for them. The protocol carries any mix of stream groups in a
/// batch, and its acknowledgement answers per group.
pub fn merge(wires: Vec<WireBatch>) -> Vec<WireBatch> {
    let mut out: Vec<WireBatch> = Vec::with_capacity(wires.len());
    for w in wires {
        match out
            .iter_mut()
            .find(|o| o.batch.patient == w.batch.patient && o.batch.device == w.batch.device)
        {
            Some(o) => {
                o.batch.streams.extend(w.batch.streams);
                o.rows.extend(w.rows);
            }
            None => out.push(w),
        }
    }
    out
}

/// Turns a buffer batch into wire batches, one per (patient, device),
/// reduced according to `reduction`. `alert_times` are the times of alert
/// events: a reading at one of them is always kept. `keep_raw` sends the
/// characteristic bytes along.
pub fn assemble(
    batch: &crate::store::InFlightBatch,
    reduction: Reduction,
    alert_times: &HashSet<DateTime<Utc>>,
    keep_raw: bool,
    sent_at: DateTime<Utc>,
) -> Result<Vec<WireBatch>> {
    let config = ReducerConfig::for_stream(batch.stream);
    // (patient, device) -> (session, characteristic) -> readings.
    type Groups<'a> = BTreeMap<(Option<i64>, u16), Vec<&'a StoredReading>>;
    let mut by_device: BTreeMap<(String, String), Groups<'_>> = BTreeMap::new();
    for r in &batch.readings {
        let p = &r.reading.provenance;
        by_device
            .entry((r.reading.patient.0.clone(), p.device.0.clone()))
            .or_default()
            .entry((p.session, p.characteristic))
            .or_default()
            .push(r);
    }
    let mut out = Vec::with_capacity(by_device.len());
    for ((patient, device), groups) in by_device {
        let mut wire = Batch::new(
            BatchId::random(),
            PatientId(patient),
            DeviceId(device),
            sent_at,
        );
        let mut rows = Vec::new();
        for (_, mut readings) in groups {
            readings.sort_by_key(|r| (r.reading.sensor_time, r.reading.sequence));
            let held = held_back(&readings, reduction, config, alert_times);
            for (r, held) in readings.iter().zip(held) {
                match (held, config) {
                    (true, Some(c)) => wire.push_held_back(&r.reading, c.tolerance)?,
                    _ => wire.push_reading(&r.reading, keep_raw)?,
                }
                rows.push((
                    r.id,
                    r.reading.stream,
                    r.reading.provenance.session,
                    r.reading.sequence,
                ));
            }
        }
        debug_assert_eq!(rows.len(), wire.reading_count() + held_count(&wire));
        out.push(WireBatch { batch: wire, rows });
    }
    Ok(out)
}

fn held_count(batch: &Batch) -> usize {
    batch.streams.iter().map(|g| g.held_back.len()).sum()
}

/// Which readings of one group (sorted by time) travel as held back.
fn held_back(
    readings: &[&StoredReading],
    reduction: Reduction,
    config: Option<ReducerConfig>,
    alert_times: &HashSet<DateTime<Utc>>,
) -> Vec<bool> {
    let n = readings.len();
    let Some(config) = config else {
        return vec![false; n];
    };
    let mut held = match reduction {
        Reduction::Off => vec![false; n],
        Reduction::Marked | Reduction::Streaming => readings.iter().map(|r| r.held).collect(),
        Reduction::AtSync => {
            let samples: Vec<Sample> = readings
                .iter()
                .map(|r| Sample {
                    time: r.reading.sensor_time,
                    value: r.reading.value,
                })
                .collect();
            let must_keep: Vec<bool> = readings
                .iter()
                .map(|r| alert_times.contains(&r.reading.sensor_time))
                .collect();
            match reduce(&samples, &must_keep, &Policy::BoundedError(config)) {
                Ok(kept) => {
                    let mut held = vec![true; n];
                    for i in kept {
                        if let Some(h) = held.get_mut(i) {
                            *h = false;
                        }
                    }
                    held
                }
                // Two readings at one time (a sensor that repeats a time
                // stamp): the reducer refuses the series, so it goes lossless.
                Err(_) => vec![false; n],
            }
        }
    };
    if reduction == Reduction::Streaming {
        return held;
    }
    // The first and last readings of a group are always kept: each held-back
    // reading then has kept neighbours in this batch on both sides, whatever
    // the server already holds.
    if let Some(first) = held.first_mut() {
        *first = false;
    }
    if let Some(last) = held.last_mut() {
        *last = false;
    }
    held
}

/// What one acknowledgement settled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    /// Readings the cloud now holds.
    pub stored: u64,
    /// Readings refused for good.
    pub rejected: u64,
    /// The same per stream, in the order the batch carried them: what the
    /// engine reports to the app, a stream at a time.
    pub by_stream: Vec<(Stream, StreamSettled)>,
}

/// What one acknowledgement settled of one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamSettled {
    /// Readings of the stream the cloud now holds.
    pub stored: u64,
    /// Readings of the stream refused for good.
    pub rejected: u64,
}

impl Settled {
    /// Readings settled either way.
    pub fn total(&self) -> u64 {
        self.stored.saturating_add(self.rejected)
    }
}

/// Marks the rows of `wire` that `ack` covers (stored or rejected) as
/// acknowledged in the buffer; rows it does not cover stay in flight for
/// the engine to roll back. An ack for another batch id settles nothing.
pub fn settle(buffer: &mut Buffer, wire: &WireBatch, ack: &BatchAck) -> Result<Settled> {
    if ack.batch != wire.batch.id {
        return Ok(Settled::default());
    }
    let mut ids = Vec::with_capacity(wire.rows.len());
    let mut rejected = 0u64;
    let mut by_stream: Vec<(Stream, StreamSettled)> = Vec::new();
    for &(id, stream, session, seq) in &wire.rows {
        if !ack.settles(stream, session, seq) {
            continue;
        }
        ids.push(id);
        let refused = ack
            .streams
            .iter()
            .filter(|s| s.stream == stream && s.session == session)
            .any(|s| s.rejected.iter().any(|r| r.seq == seq));
        if refused {
            rejected += 1;
        }
        match by_stream.iter_mut().find(|(s, _)| *s == stream) {
            Some((_, e)) if refused => e.rejected += 1,
            Some((_, e)) => e.stored += 1,
            None => by_stream.push((
                stream,
                StreamSettled {
                    stored: u64::from(!refused),
                    rejected: u64::from(refused),
                },
            )),
        }
    }
    let marked = buffer.acknowledge_readings(&ids)?;
    Ok(Settled {
        stored: marked.saturating_sub(rejected),
        rejected,
        by_stream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Provenance, Quality, Reading};
    use crate::store::{BufferConfig, SyncState};
    use crate::wire::{RejectReason, Rejected, SeqRange, StreamAck};
    use chrono::TimeDelta;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn reading(device: &str, stream: Stream, seq: u64, value: f64) -> Reading {
        let time = t0() + TimeDelta::minutes(5 * seq as i64);
        Reading {
            patient: PatientId("p-1".into()),
            stream,
            value,
            sensor_time: time,
            receive_time: time,
            sequence: seq,
            quality: Quality::default(),
            provenance: Provenance {
                device: DeviceId(device.into()),
                characteristic: 0x2AA7,
                raw: vec![1, 2, 3],
                session: Some(1),
            },
        }
    }

    fn buffer() -> (tempdir::Dir, Buffer) {
        let dir = tempdir::Dir::new();
        let b = Buffer::open(dir.path.join("b.db"), BufferConfig::default()).unwrap();
        (dir, b)
    }

    mod tempdir {
        pub struct Dir {
            pub path: std::path::PathBuf,
        }
        impl Dir {
            pub fn new() -> Dir {
                let path = std::env::temp_dir().join(format!(
                    "vigil-sync-{}-{}",
                    std::process::id(),
                    rand::random::<u64>()
                ));
                std::fs::create_dir_all(&path).unwrap();
                Dir { path }
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.path);
            }
        }
    }

    #[test]
    fn one_wire_batch_per_device_and_every_row_accounted_for() {
        let (_d, mut b) = buffer();
        let mut rs = Vec::new();
        for seq in 0..10 {
            rs.push(reading("cgm-a", Stream::Glucose, seq, 100.0 + seq as f64));
            rs.push(reading("cgm-b", Stream::Glucose, seq, 150.0));
        }
        b.insert(&rs).unwrap();
        let batch = b
            .next_batch_with_held(Stream::Glucose, 100)
            .unwrap()
            .unwrap();
        let wires = assemble(&batch, Reduction::Off, &HashSet::new(), false, t0()).unwrap();
        assert_eq!(wires.len(), 2);
        for w in &wires {
            assert_eq!(w.rows.len(), 10);
            assert_eq!(w.batch.reading_count(), 10);
            w.batch.validate().unwrap();
        }
        assert_ne!(wires[0].batch.id, wires[1].batch.id);
    }

    #[test]
    fn at_sync_reduction_holds_back_a_straight_line_and_keeps_alert_readings() {
        let (_d, mut b) = buffer();
        // A straight line: everything between the ends is reconstructible.
        let rs: Vec<Reading> = (0..12)
            .map(|s| reading("cgm", Stream::Glucose, s, 100.0 + s as f64))
            .collect();
        b.insert(&rs).unwrap();
        let batch = b
            .next_batch_with_held(Stream::Glucose, 100)
            .unwrap()
            .unwrap();
        let alert_at: HashSet<_> = [rs[6].sensor_time].into_iter().collect();
        let wires = assemble(&batch, Reduction::AtSync, &alert_at, false, t0()).unwrap();
        let g = &wires[0].batch.streams[0];
        let kept: Vec<u64> = g.readings.iter().map(|r| r.seq).collect();
        assert!(
            kept.contains(&0) && kept.contains(&11) && kept.contains(&6),
            "{kept:?}"
        );
        assert!(g.held_back.len() >= 8, "{kept:?}");
        assert_eq!(g.tolerance, Some(3.0));
        for (h, value) in g.reconstruct_held_back() {
            let truth = 100.0 + h.seq as f64;
            assert!((value.unwrap() - truth).abs() <= 3.0);
        }
        // Record streams are never reduced.
        let rr: Vec<Reading> = (0..12)
            .map(|s| reading("strap", Stream::RrInterval, s, 0.8))
            .collect();
        b.insert(&rr).unwrap();
        let batch = b
            .next_batch_with_held(Stream::RrInterval, 100)
            .unwrap()
            .unwrap();
        let wires = assemble(&batch, Reduction::AtSync, &HashSet::new(), false, t0()).unwrap();
        assert_eq!(wires[0].batch.reading_count(), 12);
        assert!(wires[0].batch.streams[0].tolerance.is_none());
    }

    #[test]
    fn marked_reduction_sends_marks_as_held_back_but_never_the_last_reading() {
        let (_d, mut b) = buffer();
        let rs: Vec<Reading> = (0..5)
            .map(|s| reading("cgm", Stream::Glucose, s, 100.0))
            .collect();
        let out = b.insert(&rs).unwrap();
        let ids: Vec<i64> = out.ids.iter().map(|i| i.unwrap()).collect();
        // The pipeline held back 1, 2 and 4 (4 is trailing: its kept reading
        // after it has not arrived yet).
        b.mark_held(&[ids[1], ids[2], ids[4]], true).unwrap();
        let batch = b
            .next_batch_with_held(Stream::Glucose, 100)
            .unwrap()
            .unwrap();
        assert_eq!(batch.readings.len(), 5);
        let wires = assemble(&batch, Reduction::Marked, &HashSet::new(), false, t0()).unwrap();
        let g = &wires[0].batch.streams[0];
        let held: Vec<u64> = g.held_back.iter().map(|h| h.seq).collect();
        assert_eq!(held, vec![1, 2]);
        assert_eq!(
            g.readings.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![0, 3, 4]
        );
    }

    #[test]
    fn settle_marks_only_what_the_ack_covers_and_counts_rejections() {
        let (_d, mut b) = buffer();
        let rs: Vec<Reading> = (0..6)
            .map(|s| reading("cgm", Stream::Glucose, s, 100.0 + 7.0 * (s % 2) as f64))
            .collect();
        b.insert(&rs).unwrap();
        let batch = b
            .next_batch_with_held(Stream::Glucose, 100)
            .unwrap()
            .unwrap();
        let wires = assemble(&batch, Reduction::Off, &HashSet::new(), false, t0()).unwrap();
        let w = &wires[0];
        // The server stored 0..=2 and refused 3; 4 and 5 are not covered.
        let ack = BatchAck {
            v: 1,
            batch: w.batch.id,
            duplicate: false,
            streams: vec![StreamAck {
                stream: Stream::Glucose,
                session: Some(1),
                stored: vec![SeqRange { first: 0, last: 2 }],
                rejected: vec![Rejected {
                    seq: 3,
                    reason: RejectReason::ImpossibleValue,
                }],
            }],
        };
        // An ack for another batch id settles nothing.
        let stranger = BatchAck {
            batch: BatchId::random(),
            ..ack.clone()
        };
        assert_eq!(settle(&mut b, w, &stranger).unwrap(), Settled::default());
        let s = settle(&mut b, w, &ack).unwrap();
        assert_eq!(
            s,
            Settled {
                stored: 3,
                rejected: 1,
                by_stream: vec![(
                    Stream::Glucose,
                    StreamSettled {
                        stored: 3,
                        rejected: 1
                    }
                )],
            }
        );
        assert_eq!(b.count(None, Some(SyncState::Acknowledged)).unwrap(), 4);
        assert_eq!(b.count(None, Some(SyncState::InFlight)).unwrap(), 2);
        b.rollback_in_flight(Some(batch.id)).unwrap();
        let again = b
            .next_batch_with_held(Stream::Glucose, 100)
            .unwrap()
            .unwrap();
        let seqs: Vec<u64> = again.readings.iter().map(|r| r.reading.sequence).collect();
        assert_eq!(seqs, vec![4, 5]);
    }
}
