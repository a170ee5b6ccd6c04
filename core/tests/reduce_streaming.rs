//! Streaming reduction through the buffer: whatever the batch boundaries,
//! the sync passes and the restarts, the phone decides exactly what the
//! same reducer decides offline on the whole trace, sends every reading
//! once, and every held-back reading is reconstructable within tolerance
//! from kept readings the cloud already has (in its batch or an earlier
//! one).

// Test crate: helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod store_common;

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use store_common::{TempDir, reading, t0};
use vigil_core::model::{DeviceId, Reading, Sample, Stream};
use vigil_core::reduce::{Policy, ReducerConfig, interpolate, reduce};
use vigil_core::store::{Buffer, BufferConfig, OutboxAlert};
use vigil_core::sync::decide_closed_segments;

/// What the cloud holds of one series: kept readings by time, and the
/// reconstructed values of held-back ones.
#[derive(Default)]
struct Cloud {
    kept: BTreeMap<DateTime<Utc>, f64>,
    held: BTreeMap<u64, f64>,
    seen: HashSet<u64>,
}

impl Cloud {
    /// Receives one batch as the ingest service does: its kept readings,
    /// then each held-back one interpolated between the kept one before it
    /// (this batch or stored) and a kept one after it in this batch.
    fn receive(&mut self, rows: &[(u64, DateTime<Utc>, f64, bool)]) {
        let mut batch_kept: Vec<Sample> = rows
            .iter()
            .filter(|r| !r.3)
            .map(|r| Sample {
                time: r.1,
                value: r.2,
            })
            .collect();
        batch_kept.sort_by_key(|s| s.time);
        for &(seq, _, _, _) in rows {
            assert!(self.seen.insert(seq), "reading {seq} sent twice");
        }
        for &(seq, time, _, held) in rows {
            if !held {
                continue;
            }
            let mut around = batch_kept.clone();
            if let Some((t, v)) = self.kept.range(..time).next_back() {
                around.insert(
                    0,
                    Sample {
                        time: *t,
                        value: *v,
                    },
                );
            }
            let value = interpolate(&around, time)
                .unwrap_or_else(|| panic!("held-back reading {seq} has no kept neighbours"));
            self.held.insert(seq, value);
        }
        for &(_, time, value, held) in rows {
            if !held {
                self.kept.insert(time, value);
            }
        }
    }
}

/// Drains every decided reading into the cloud, in batches of `limit`.
fn sync(buffer: &mut Buffer, cloud: &mut Cloud, now: DateTime<Utc>, limit: usize) {
    decide_closed_segments(buffer, Stream::Glucose, now).unwrap();
    while let Some(batch) = buffer.next_decided_batch(Stream::Glucose, limit).unwrap() {
        let rows: Vec<_> = batch
            .readings
            .iter()
            .map(|r| {
                (
                    r.reading.sequence,
                    r.reading.sensor_time,
                    r.reading.value,
                    r.held,
                )
            })
            .collect();
        cloud.receive(&rows);
        buffer.acknowledge_batch(batch.id).unwrap();
    }
}

fn trace(steps: &[(f64, bool)]) -> Vec<Reading> {
    let mut value: f64 = 120.0;
    let mut minute = 0i64;
    let mut out = Vec::new();
    for (seq, &(delta, gap)) in steps.iter().enumerate() {
        value = (value + delta).clamp(40.0, 400.0);
        minute += if gap { 25 } else { 5 };
        out.push(reading(
            "cgm-1",
            Stream::Glucose,
            seq as u64,
            t0() + TimeDelta::minutes(minute),
            value.round(),
        ));
    }
    out
}

/// One run: readings arrive in chunks; after some chunks the phone syncs
/// (with a random batch limit), after some it is killed and reopened.
fn run(readings: &[Reading], plan: &[(usize, bool, bool, usize)], alerts: &[usize]) -> Cloud {
    let dir = TempDir::new("streaming");
    let mut buffer = Buffer::open(dir.db(), BufferConfig::default()).unwrap();
    for &i in alerts {
        buffer
            .enqueue_alert(&OutboxAlert {
                id: format!("a{i}"),
                kind: "low".into(),
                phase: "raised".into(),
                time: readings[i].sensor_time,
                value: Some(readings[i].value),
                payload: b"{}".to_vec(),
            })
            .unwrap();
    }
    let mut cloud = Cloud::default();
    let mut next = 0;
    for &(chunk, sync_now, restart, limit) in plan.iter().cycle() {
        if next >= readings.len() {
            break;
        }
        let end = (next + chunk.max(1)).min(readings.len());
        buffer.insert(&readings[next..end]).unwrap();
        let now = readings[end - 1].sensor_time + TimeDelta::seconds(30);
        next = end;
        if sync_now {
            sync(&mut buffer, &mut cloud, now, limit.max(1));
        }
        if restart {
            drop(buffer);
            buffer = Buffer::open(dir.db(), BufferConfig::default()).unwrap();
        }
    }
    // The sensor goes quiet: the open tail closes by time.
    let later = readings.last().unwrap().sensor_time + TimeDelta::hours(1);
    sync(&mut buffer, &mut cloud, later, 1000);
    let c = buffer
        .completeness(&DeviceId("cgm-1".into()), Stream::Glucose)
        .unwrap();
    assert_eq!(c.acknowledged, readings.len() as u64);
    assert_eq!(c.acknowledged_held_back, cloud.held.len() as u64);
    assert_eq!(c.undecided, 0);
    cloud
}

fn offline_kept(readings: &[Reading], alerts: &[usize]) -> Vec<u64> {
    let samples: Vec<Sample> = readings
        .iter()
        .map(|r| Sample {
            time: r.sensor_time,
            value: r.value,
        })
        .collect();
    let mut marks = vec![false; readings.len()];
    for &i in alerts {
        marks[i] = true;
    }
    let config = ReducerConfig::for_stream(Stream::Glucose).unwrap();
    reduce(&samples, &marks, &Policy::BoundedError(config))
        .unwrap()
        .into_iter()
        .map(|i| readings[i].sequence)
        .collect()
}

fn check(readings: &[Reading], plan: &[(usize, bool, bool, usize)], alerts: &[usize]) {
    let cloud = run(readings, plan, alerts);
    assert_eq!(cloud.seen.len(), readings.len(), "every reading sent");
    let by_time: BTreeMap<DateTime<Utc>, u64> = readings
        .iter()
        .map(|r| (r.sensor_time, r.sequence))
        .collect();
    let mut kept: Vec<u64> = cloud.kept.keys().map(|t| by_time[t]).collect();
    kept.sort_unstable();
    assert_eq!(kept, offline_kept(readings, alerts), "same as offline");
    for r in readings {
        if let Some(v) = cloud.held.get(&r.sequence) {
            assert!(
                (v - r.value).abs() <= 3.0,
                "held-back {} reconstructed as {v}, was {}",
                r.sequence,
                r.value
            );
        }
    }
    for &i in alerts {
        assert!(cloud.kept.contains_key(&readings[i].sensor_time));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_batch_boundaries_and_restarts_decide_as_offline_and_reconstruct_within_tolerance(
        steps in prop::collection::vec((-6.0f64..6.0, prop::bool::weighted(0.02)), 1..400),
        plan in prop::collection::vec((1usize..8, any::<bool>(), prop::bool::weighted(0.3), 1usize..40), 1..12),
        alert_picks in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let readings = trace(&steps);
        let alerts: Vec<usize> = alert_picks.iter().map(|i| i.index(readings.len())).collect();
        check(&readings, &plan, &alerts);
    }
}

#[test]
fn fifteen_minute_batches_hold_back_as_much_as_the_whole_trace_offline() {
    // A slow sine: long straight-ish segments that span many batches.
    let readings: Vec<Reading> = (0..600)
        .map(|i| {
            let v = 140.0 + 30.0 * (i as f64 / 40.0).sin();
            reading(
                "cgm-1",
                Stream::Glucose,
                i,
                t0() + TimeDelta::minutes(5 * i as i64),
                v.round(),
            )
        })
        .collect();
    // Three readings per sync, as the default 15-minute cadence sees them.
    let cloud = run(&readings, &[(3, true, false, 5000)], &[]);
    let offline = offline_kept(&readings, &[]);
    assert_eq!(cloud.kept.len(), offline.len());
    let held_share = cloud.held.len() as f64 / readings.len() as f64;
    assert!(
        held_share > 0.5,
        "held back {held_share:.2}: batching must not force keeps"
    );
}

#[test]
fn the_open_tail_waits_and_is_never_sent_undecided() {
    let dir = TempDir::new("tail");
    let mut buffer = Buffer::open(dir.db(), BufferConfig::default()).unwrap();
    let line: Vec<Reading> = (0..6)
        .map(|i| {
            reading(
                "cgm-1",
                Stream::Glucose,
                i,
                t0() + TimeDelta::minutes(5 * i as i64),
                100.0 + i as f64,
            )
        })
        .collect();
    buffer.insert(&line).unwrap();
    let now = line[5].sensor_time + TimeDelta::seconds(10);
    decide_closed_segments(&mut buffer, Stream::Glucose, now).unwrap();
    // Only the first reading is decided (kept); the straight line after it
    // is still open, so nothing else may travel yet.
    let batch = buffer
        .next_decided_batch(Stream::Glucose, 100)
        .unwrap()
        .unwrap();
    let seqs: Vec<u64> = batch.readings.iter().map(|r| r.reading.sequence).collect();
    assert_eq!(seqs, vec![0]);
    buffer.acknowledge_batch(batch.id).unwrap();
    assert!(
        buffer
            .next_decided_batch(Stream::Glucose, 100)
            .unwrap()
            .is_none()
    );
    let c = buffer
        .completeness(&DeviceId("cgm-1".into()), Stream::Glucose)
        .unwrap();
    assert_eq!((c.undecided, c.acknowledged), (5, 1));
}
