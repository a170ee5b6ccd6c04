//! The fault suite's one judge: compares what a phone's buffer and its
//! completeness ledger say with what the server stored, and lists every
//! broken invariant (an empty list is a pass):
//!
//! - **no loss**: every reading the buffer holds is acknowledged and
//!   stored on the server under its key (device, stream, session, seq);
//!   record-class values bit-exact, held-back trend values within the
//!   tolerance the server recorded;
//! - **no duplicates**: each key once on the server;
//! - **per-stream order**: the buffer received each session's sequences in
//!   increasing order, and the server's times rise with the sequence
//!   (checked where times are comparable, see [`Expect::times`]);
//! - **alerts**: the outbox is empty and every expected `(id, phase)` is
//!   stored as many times as it was raised (an episode's re-alerts share
//!   one), nothing else;
//! - **ledger**: per stream, the ledger's acknowledged count equals the
//!   server's count, nothing is unsent or in flight, and server rows the
//!   buffer no longer holds are exactly the ledger's evicted-acknowledged;
//!   a reading the phone keeps to itself (local-only: the CGM trend, which
//!   the server derives) is on the phone and not on the server, and the
//!   ledger's local-only count is exactly those readings;
//!   phone and server agree on every reading's fate (kept, or held back
//!   and reconstructed): the buffer's held mark equals the server's, and
//!   the ledger's acknowledged-held-back count equals the server's
//!   held-back count.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use vigil_core::model::{DeviceId, Stream};
use vigil_core::store::{Buffer, SyncState};
use vigil_ingest::storage::Storage;
use vigil_ingest::storage::intake::{ReadingQuery, StoredReading};

/// What the scenario expects beyond the invariants.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// The device streams to compare.
    pub streams: Vec<(DeviceId, Stream)>,
    /// Every alert `(id, phase)` the phone raised, once per event.
    pub alerts: Vec<(String, String)>,
    /// `Some((shift, tolerance))`: each server time must equal the buffer's
    /// sensor time plus `shift` within `tolerance` (the service corrects a
    /// wrong phone clock from `sent_at`). `None` where the phone ran on
    /// simulated time, which the service, reading its own wall clock,
    /// re-times per request.
    pub times: Option<(TimeDelta, TimeDelta)>,
}

/// Counts of a passing comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Server readings per `(device, stream)`.
    pub per_stream: BTreeMap<(String, String), u64>,
    /// Server readings in all compared streams.
    pub readings: u64,
    /// Of those, held back by the phone and reconstructed by the server.
    pub held_back: u64,
    /// Alerts stored on the server.
    pub alerts: u64,
}

type Key = (Option<i64>, u64);

/// Every reading of `patient` the server holds.
pub fn server_readings(storage: &dyn Storage, patient: i64) -> Result<Vec<StoredReading>, String> {
    storage
        .readings(&ReadingQuery {
            patient,
            stream: None,
            from: DateTime::<Utc>::MIN_UTC,
            to: DateTime::<Utc>::MAX_UTC,
            limit: u32::MAX,
        })
        .map_err(|e| format!("server readings: {e}"))
}

/// Compares `buffer` with the server's storage of `patient`; `Err` lists
/// every violation found.
pub fn verify(
    buffer: &Buffer,
    storage: &dyn Storage,
    patient: i64,
    expect: &Expect,
) -> Result<Summary, Vec<String>> {
    let mut bad = Vec::new();
    let mut summary = Summary::default();
    let server = server_readings(storage, patient).map_err(|e| vec![e])?;
    let mut by_stream: HashMap<(String, Stream), Vec<&StoredReading>> = HashMap::new();
    for r in &server {
        by_stream
            .entry((r.device.clone(), r.stream))
            .or_default()
            .push(r);
    }
    for (device, stream) in &expect.streams {
        let label = format!("{}/{}", device.0, stream.as_str());
        let rows = by_stream
            .remove(&(device.0.clone(), *stream))
            .unwrap_or_default();
        let mut on_server: HashMap<Key, &StoredReading> = HashMap::new();
        for r in &rows {
            if on_server.insert((r.session, r.seq), r).is_some() {
                bad.push(format!(
                    "{label}: duplicate on server {:?}",
                    (r.session, r.seq)
                ));
            }
        }
        let local = match buffer.readings_of(device, *stream) {
            Ok(l) => l,
            Err(e) => return Err(vec![format!("{label}: buffer: {e}")]),
        };
        // Arrival order in the buffer: sequences rise within a session.
        let mut last: HashMap<Option<i64>, u64> = HashMap::new();
        for s in &local {
            let k = s.reading.provenance.session;
            if let Some(prev) = last.insert(k, s.reading.sequence) {
                if s.reading.sequence <= prev {
                    bad.push(format!(
                        "{label}: buffer order: seq {} after {prev} (session {k:?})",
                        s.reading.sequence
                    ));
                }
            }
        }
        let mut missing = 0u64;
        let mut local_only = 0u64;
        for s in &local {
            let key = (s.reading.provenance.session, s.reading.sequence);
            if s.state == SyncState::LocalOnly {
                local_only += 1;
                if s.reading.stream.is_uploaded() {
                    bad.push(format!(
                        "{label}: {key:?} local-only but its stream is synced"
                    ));
                }
                if on_server.contains_key(&key) {
                    bad.push(format!(
                        "{label}: {key:?} local-only on the phone but on the server"
                    ));
                }
                continue;
            }
            if s.state != SyncState::Acknowledged {
                bad.push(format!("{label}: {key:?} still {:?} on the phone", s.state));
            }
            let Some(r) = on_server.get(&key) else {
                missing += 1;
                if missing <= 5 {
                    bad.push(format!("{label}: {key:?} lost (not on server)"));
                }
                continue;
            };
            let want = s.reading.value;
            if s.held != r.held_back {
                bad.push(format!(
                    "{label}: {key:?} held back on the {} only",
                    if s.held { "phone" } else { "server" }
                ));
            }
            if r.held_back {
                summary.held_back += 1;
                let tol = r.tolerance.unwrap_or(0.0) + 1e-9;
                if (r.value - want).abs() > tol {
                    bad.push(format!(
                        "{label}: {key:?} reconstructed off by {} > {tol}",
                        (r.value - want).abs()
                    ));
                }
            } else if r.value.to_bits() != want.to_bits() {
                bad.push(format!("{label}: {key:?} value changed"));
            }
            if let Some((shift, tol)) = expect.times {
                let off = r.time - (s.reading.sensor_time + shift);
                if off.abs() > tol {
                    bad.push(format!("{label}: {key:?} time off by {off}"));
                }
            }
        }
        if missing > 5 {
            bad.push(format!("{label}: {missing} readings lost in all"));
        }
        // Server order: within a session, times rise with the sequence, up
        // to the time tolerance: the service corrects a wrong phone clock
        // per request, from that request's `sent_at`, so two batches' times
        // may differ by the requests' latencies.
        if let Some((_, tol)) = expect.times {
            let mut sorted: Vec<&&StoredReading> = on_server.values().collect();
            sorted.sort_by_key(|r| (r.session, r.seq));
            for w in sorted.windows(2) {
                if let [a, b] = w {
                    if a.session == b.session && b.time + tol < a.time {
                        bad.push(format!(
                            "{label}: server order: seq {} before {}",
                            b.seq, a.seq
                        ));
                    }
                }
            }
        }
        match buffer.completeness(device, *stream) {
            Ok(c) => {
                if c.acknowledged != rows.len() as u64 {
                    bad.push(format!(
                        "{label}: ledger says {} acknowledged, server holds {}",
                        c.acknowledged,
                        rows.len()
                    ));
                }
                let server_held = rows.iter().filter(|r| r.held_back).count() as u64;
                if c.acknowledged_held_back != server_held {
                    bad.push(format!(
                        "{label}: ledger says {} acknowledged held back, server holds {server_held}",
                        c.acknowledged_held_back
                    ));
                }
                if c.unsent != 0 || c.in_flight != 0 {
                    bad.push(format!(
                        "{label}: ledger: {} unsent, {} in flight",
                        c.unsent, c.in_flight
                    ));
                }
                if c.local_only != local_only {
                    bad.push(format!(
                        "{label}: ledger says {} local-only, the buffer holds {local_only}",
                        c.local_only
                    ));
                }
                let synced = (local.len() as u64).saturating_sub(missing + local_only);
                let gone = rows.len() as u64 - synced.min(rows.len() as u64);
                if gone != c.evicted_acknowledged {
                    bad.push(format!(
                        "{label}: server holds {gone} readings the buffer no longer has, ledger evicted {}",
                        c.evicted_acknowledged
                    ));
                }
            }
            Err(e) => bad.push(format!("{label}: ledger: {e}")),
        }
        summary.per_stream.insert(
            (device.0.clone(), stream.as_str().to_string()),
            rows.len() as u64,
        );
        summary.readings += rows.len() as u64;
    }
    for ((device, stream), rows) in by_stream {
        bad.push(format!(
            "server holds {} readings of {device}/{} nobody sent",
            rows.len(),
            stream.as_str()
        ));
    }
    check_alerts(
        buffer,
        storage,
        patient,
        &expect.alerts,
        &mut bad,
        &mut summary,
    );
    if bad.is_empty() {
        Ok(summary)
    } else {
        Err(bad)
    }
}

fn check_alerts(
    buffer: &Buffer,
    storage: &dyn Storage,
    patient: i64,
    expected: &[(String, String)],
    bad: &mut Vec<String>,
    summary: &mut Summary,
) {
    match buffer.pending_alerts() {
        Ok(p) if p.is_empty() => {}
        Ok(p) => bad.push(format!("{} alerts still in the outbox", p.len())),
        Err(e) => bad.push(format!("outbox: {e}")),
    }
    let stored = match storage.alerts_for(&[patient], DateTime::<Utc>::MIN_UTC, u32::MAX) {
        Ok(s) => s,
        Err(e) => {
            bad.push(format!("server alerts: {e}"));
            return;
        }
    };
    summary.alerts = stored.len() as u64;
    let mut counts: HashMap<(String, String), u32> = HashMap::new();
    for a in &stored {
        *counts
            .entry((a.alert.alert_id.clone(), a.alert.phase.clone()))
            .or_default() += 1;
    }
    // An episode re-alerts under one (id, phase) as often as it lasts:
    // each raised event is stored once, so the counts match.
    let mut raised: HashMap<&(String, String), u32> = HashMap::new();
    for e in expected {
        *raised.entry(e).or_default() += 1;
    }
    for (e, want) in raised {
        match counts.remove(e) {
            Some(n) if n == want => {}
            Some(n) => bad.push(format!("alert {e:?} raised {want} times, stored {n} times")),
            None => bad.push(format!("alert {e:?} never delivered")),
        }
    }
    for (e, n) in counts {
        bad.push(format!("alert {e:?} stored {n} times but never raised"));
    }
}
