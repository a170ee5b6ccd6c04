//! A whole phone (simulated CGM and heart-rate strap speaking GATT bytes,
//! sessions, alert engine, SQLite buffer, the real sync engine) against the
//! real service through the fault proxy, on simulated time:
//!
//! - a 72-hour outage with a 1-minute CGM and a 1 Hz strap, then recovery;
//! - 10 % of connections dropped, 10 % of requests duplicated, 10 % of
//!   acknowledgements lost after the server committed;
//! - the phone's clock 3 hours fast, and 3 hours slow;
//! - the CGM out of range for an hour, backfilled through RACP after;
//! - a full buffer: alerts and record data survive, trend data is evicted
//!   and counted, pressure events reach the host.
//!
//! Each ends with [`vigil_e2e::check::verify`]. `VIGIL_SOAK=1` lengthens
//! the live phases (same code).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use vigil_core::alerts::AlertConfig;
use vigil_core::clock::{Clock, SystemClock, TokioClock};
use vigil_core::model::{DeviceId, PatientId, Stream};
use vigil_core::session::{DeviceKind, Session, SessionConfig};
use vigil_core::store::{
    Buffer, BufferConfig, BufferEvent, BufferSink, CapacityPolicy, Durability, SyncState,
};
use vigil_core::sync::{HttpPoster, Network, StaticToken, SyncConfig, SyncEngine, WallClockPoster};
use vigil_core::transport::PeripheralId;
use vigil_core::transport::simulated::physiology::{GlucoseProfile, SampleInterval};
use vigil_core::transport::simulated::{
    CgmConfig, Fault, FaultPlan, HeartRateConfig, Radio, SimulatedCgm, SimulatedHeartRate,
    SimulatedTransport,
};
use vigil_e2e::check::{Expect, Summary, verify};
use vigil_e2e::phone::{Heard, Offset, PhoneSink};
use vigil_e2e::proxy::{FaultProxy, Faults, Stats};
use vigil_e2e::service::Service;

fn soak() -> bool {
    std::env::var_os("VIGIL_SOAK").is_some_and(|v| v != "0")
}

const TEN_PERCENT: Faults = Faults {
    drop: 0.1,
    duplicate: 0.1,
    cut_response: 0.1,
};

/// One scenario.
struct Plan {
    label: &'static str,
    /// Phone offline (no network at all) for this long first.
    offline: TimeDelta,
    /// Then online for this long, devices still running.
    online: TimeDelta,
    faults: Faults,
    /// The phone's clock error.
    phone_clock: TimeDelta,
    /// CGM faults, given the start time.
    cgm_faults: fn(DateTime<Utc>) -> FaultPlan,
    /// The strap at 1 Hz too.
    strap: bool,
    interval: Duration,
    batch_max: usize,
    budget: Option<u64>,
    /// A CGM wearer with lows (alerts to deliver).
    lows: bool,
}

impl Plan {
    fn new(label: &'static str) -> Plan {
        Plan {
            label,
            offline: TimeDelta::zero(),
            online: TimeDelta::hours(1),
            faults: Faults::default(),
            phone_clock: TimeDelta::zero(),
            cgm_faults: |_| FaultPlan::none(),
            strap: true,
            interval: Duration::from_secs(5 * 60),
            batch_max: 500,
            budget: None,
            lows: false,
        }
    }
}

struct Outcome {
    summary: Summary,
    stats: Stats,
    start: DateTime<Utc>,
    /// The CGM's held records: (offset minutes, true time).
    cgm_held: Vec<u16>,
    buffer: PathBuf,
    heard: Heard,
    raised: usize,
    /// Sessions stopped by a full buffer.
    stopped_full: u32,
    _dir: tempfile::TempDir,
}

fn buffer_config(plan: &Plan) -> BufferConfig {
    BufferConfig {
        // Simulated days of 1 Hz data: fsync per commit would cost minutes;
        // kill-durability is the process scenario's business.
        durability: Durability::AppCrash,
        capacity: plan
            .budget
            .map_or_else(CapacityPolicy::default, |b| CapacityPolicy {
                budget_bytes: b,
            }),
    }
}

fn run(plan: Plan) -> Outcome {
    let wall_started = Instant::now();
    let wall = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let service = wall.block_on(Service::start());
    let proxy = wall
        .block_on(FaultProxy::start(service.addr, plan.faults, 6))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    let total = plan.offline + plan.online;
    // Simulated time ends an hour before the wall clock's now, so nothing
    // lies in the server's future.
    let start = DateTime::from_timestamp((Utc::now() - total - TimeDelta::hours(1)).timestamp(), 0)
        .unwrap();
    let patient = PatientId(service.patient.to_string());
    let heard = Heard::default();
    let config = buffer_config(&plan);
    let sim = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let (cgm_held, stopped_full) = sim.block_on(async {
        let truth: Arc<dyn Clock> = Arc::new(TokioClock::new(start));
        let phone: Arc<dyn Clock> = Arc::new(Offset {
            inner: truth.clone(),
            by: plan.phone_clock,
        });
        let mut cgm_cfg = CgmConfig::new("cgm-1", 11, start);
        cgm_cfg.interval = SampleInterval::OneMinute;
        if plan.lows {
            // Lows and highs: alerts to deliver.
            cgm_cfg.profile = GlucoseProfile::poorly_controlled_type1();
        }
        cgm_cfg.faults = (plan.cgm_faults)(start);
        let cgm = Arc::new(Mutex::new(SimulatedCgm::new(cgm_cfg).unwrap()));
        let mut radio = Radio::new();
        radio.add(Box::new(cgm.clone()));
        if plan.strap {
            radio.add(Box::new(
                SimulatedHeartRate::new(HeartRateConfig::new("strap-1", 12, start)).unwrap(),
            ));
        }
        let transport = Arc::new(SimulatedTransport::start(
            radio,
            truth.clone(),
            Duration::from_secs(1),
        ));
        let _own = Buffer::open(&path, config).unwrap();
        let sync_config = SyncConfig {
            server_url: proxy.url(),
            interval: plan.interval,
            batch_max: plan.batch_max,
            request_timeout: Duration::from_secs(10),
            buffer: config,
            ..SyncConfig::default()
        };
        let poster = WallClockPoster::new(HttpPoster::new(&sync_config).unwrap()).unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let handle = Arc::new(
            SyncEngine::start_with_poster(
                path.clone(),
                patient.clone(),
                sync_config,
                Arc::new(StaticToken(service.device_token.clone())),
                tx,
                // Requests leave on the wall clock, with the phone's error.
                Arc::new(Offset {
                    inner: Arc::new(SystemClock),
                    by: plan.phone_clock,
                }),
                Arc::new(poster),
            )
            .unwrap(),
        );
        handle.set_network(if plan.offline > TimeDelta::zero() {
            Network::None
        } else {
            Network::Wifi
        });
        // Thresholds inside the wearer's usual range when the scenario wants
        // alerts: lows and highs every few hours, each to be delivered once.
        let alerts = if plan.lows {
            AlertConfig {
                urgent_low_mg_dl: 80.0,
                low_mg_dl: 100.0,
                high_mg_dl: 150.0,
                ..AlertConfig::default()
            }
        } else {
            AlertConfig::default()
        };
        let session = |kind, id: &str| {
            let sink = PhoneSink::new(
                BufferSink::new(Buffer::open_shared(&path, config).unwrap()),
                id,
                alerts.clone(),
                heard.clone(),
                Some(handle.clone()),
            )
            .unwrap();
            Session::new(
                SessionConfig::new(kind, PeripheralId(id.into()), patient.clone()),
                transport.clone(),
                phone.clone(),
                sink,
            )
        };
        let mut sessions = vec![session(DeviceKind::Cgm, "cgm-1")];
        if plan.strap {
            sessions.push(session(DeviceKind::HeartRate, "strap-1"));
        }
        let phone_start = start + plan.phone_clock;
        let mut stopped_full = 0u32;
        if plan.offline > TimeDelta::zero() {
            let t = phone_start + plan.offline;
            let runs: Vec<_> = sessions.iter_mut().map(|s| s.run_until(t)).collect();
            for r in futures_join(runs).await {
                match r {
                    // A full buffer stops a session rather than drop record
                    // data (documented): the next run resumes it.
                    Err(vigil_core::Error::BufferFull { .. }) if plan.budget.is_some() => {
                        stopped_full += 1;
                    }
                    other => other.unwrap(),
                }
            }
            // Nothing left the phone while it had no network.
            assert_eq!(proxy.stats().requests, 0, "{}", plan.label);
            handle.set_network(Network::Wifi);
        }
        let t = phone_start + total;
        let runs: Vec<_> = sessions.iter_mut().map(|s| s.run_until(t)).collect();
        for r in futures_join(runs).await {
            match r {
                Err(vigil_core::Error::BufferFull { .. }) if plan.budget.is_some() => {
                    stopped_full += 1;
                }
                other => other.unwrap(),
            }
        }
        drop(sessions);
        // The sensor goes on measuring while the phone drains: compare
        // with what it held when the phone stopped listening.
        let held = cgm.lock().unwrap().held_offsets();
        eprintln!(
            "{}: devices done after {:.1?}",
            plan.label,
            wall_started.elapsed()
        );
        // Drain: the engine's own retries and timers, nudged by sync_now.
        let check = Buffer::open_shared(&path, config).unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let report = handle.sync_now().await.unwrap();
            if std::env::var_os("E2E_TRACE").is_some() {
                eprintln!(
                    "{}: drain pass {report:?} at {:.1?}",
                    plan.label,
                    wall_started.elapsed()
                );
            }
            let unsent = check.count(None, Some(SyncState::Unsent)).unwrap()
                + check.count(None, Some(SyncState::InFlight)).unwrap();
            if unsent == 0 && check.pending_alerts().unwrap().is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {unsent} never synced, {} alerts pending",
                plan.label,
                check.pending_alerts().unwrap().len()
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Arc::try_unwrap(handle).unwrap().stop().await;
        (held, stopped_full)
    });
    let buffer = Buffer::open(&path, config).unwrap();
    let raised = heard.alerts.lock().unwrap().len();
    let mut streams = vec![(DeviceId("cgm-1".into()), Stream::Glucose)];
    if plan.strap {
        streams.push((DeviceId("strap-1".into()), Stream::HeartRate));
        streams.push((DeviceId("strap-1".into()), Stream::RrInterval));
    }
    // Streams the devices also report (battery, CGM trend) are compared too.
    streams.push((DeviceId("cgm-1".into()), Stream::Battery));
    streams.push((DeviceId("cgm-1".into()), Stream::GlucoseTrend));
    if plan.strap {
        streams.push((DeviceId("strap-1".into()), Stream::Battery));
    }
    let summary = verify(
        &buffer,
        service.store.blocking(),
        service.patient,
        &Expect {
            streams,
            alerts: heard.alerts.lock().unwrap().clone(),
            times: Some((-plan.phone_clock, TimeDelta::seconds(2))),
        },
    )
    .unwrap_or_else(|bad| {
        panic!(
            "{}: {} violations:\n{}",
            plan.label,
            bad.len(),
            bad.join("\n")
        )
    });
    let stats = proxy.stats();
    eprintln!(
        "{}: {} readings on the server ({} held back), {:?}, {} alerts, proxy {stats:?}, {:.1?}",
        plan.label,
        summary.readings,
        summary.held_back,
        summary.per_stream,
        summary.alerts,
        wall_started.elapsed()
    );
    drop(buffer);
    Outcome {
        summary,
        stats,
        start,
        cgm_held,
        buffer: path,
        heard,
        raised,
        stopped_full,
        _dir: dir,
    }
}

/// Awaits every future, in order of completion, on this task (sessions
/// hold SQLite connections and are not `Send`).
async fn futures_join<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.unwrap()).collect()
}

fn glucose_seqs(o: &Outcome) -> Vec<u64> {
    let b = Buffer::open_shared(&o.buffer, BufferConfig::default()).unwrap();
    b.readings_of(&DeviceId("cgm-1".into()), Stream::Glucose)
        .unwrap()
        .iter()
        .map(|r| r.reading.sequence)
        .collect()
}

#[test]
fn a_72_hour_outage_then_recovery_through_a_faulty_network_loses_nothing() {
    let online = TimeDelta::hours(if soak() { 24 } else { 1 });
    let o = run(Plan {
        offline: TimeDelta::hours(72),
        online,
        faults: TEN_PERCENT,
        interval: Duration::from_secs(15 * 60),
        batch_max: 5000,
        lows: true,
        ..Plan::new("outage-72h")
    });
    let cgm = o.summary.per_stream[&("cgm-1".into(), "glucose".into())];
    let hr = o.summary.per_stream[&("strap-1".into(), "heart_rate".into())];
    // A reading a minute and one a second, for 73 hours (give or take the
    // first connection's seconds).
    assert!(cgm >= 73 * 60 - 2, "{cgm}");
    assert!(hr >= 73 * 3600 - 60, "{hr}");
    // Every record the sensor made while the phone listened, in order.
    let minutes = (TimeDelta::hours(72) + online).num_minutes() as u64;
    let held: Vec<u64> = o
        .cgm_held
        .iter()
        .map(|&x| u64::from(x))
        .filter(|&x| x < minutes)
        .collect();
    assert_eq!(glucose_seqs(&o), held);
    assert!(o.raised > 0 && o.raised as u64 == o.summary.alerts);
    assert!(
        o.stats.dropped > 0 && o.stats.duplicated > 0 && o.stats.cut > 0,
        "{:?}",
        o.stats
    );
}

#[test]
fn dropped_duplicated_and_unacknowledged_requests_store_everything_once() {
    let o = run(Plan {
        online: TimeDelta::hours(if soak() { 48 } else { 6 }),
        faults: TEN_PERCENT,
        interval: Duration::from_secs(60),
        batch_max: 200,
        lows: true,
        ..Plan::new("proxy-faults")
    });
    let s = o.stats;
    assert!(s.requests >= 100, "{s:?}");
    assert!(s.dropped > 0 && s.duplicated > 0 && s.cut > 0, "{s:?}");
    assert!(
        o.raised > 0 && o.raised == o.summary.alerts as usize,
        "{}",
        o.raised
    );
}

#[test]
fn a_phone_clock_three_hours_fast_is_corrected_by_the_server() {
    let o = run(Plan {
        online: TimeDelta::hours(3),
        faults: TEN_PERCENT,
        phone_clock: TimeDelta::hours(3),
        ..Plan::new("clock+3h")
    });
    assert!(o.summary.readings > 3 * 3600);
    let _ = o.start;
}

#[test]
fn a_phone_clock_three_hours_slow_is_corrected_by_the_server() {
    let o = run(Plan {
        online: TimeDelta::hours(3),
        faults: TEN_PERCENT,
        phone_clock: -TimeDelta::hours(3),
        ..Plan::new("clock-3h")
    });
    assert!(o.summary.readings > 3 * 3600);
}

/// The service once deduped alerts by (patient, id, phase, corrected
/// time); the correction (server now − `sent_at`) differs by each attempt's
/// latency, so a retried or duplicated alert from a phone whose clock is
/// off was stored twice (`alert (…, "realert") stored 2 times`). It now
/// dedupes on the phone's own time (migration 0013).
#[test]
fn an_alert_retried_from_a_phone_clock_three_hours_fast_is_stored_once() {
    let o = run(Plan {
        online: TimeDelta::hours(3),
        // Nearly every request arrives twice: the copies' corrections
        // differ by the time between them.
        faults: Faults {
            duplicate: 0.9,
            ..Faults::default()
        },
        phone_clock: TimeDelta::hours(3),
        lows: true,
        ..Plan::new("clock+3h-alerts")
    });
    assert!(o.raised > 0);
}

#[test]
fn an_hour_out_of_range_is_backfilled_through_racp_with_no_gap() {
    let o = run(Plan {
        online: TimeDelta::hours(5),
        strap: false,
        cgm_faults: |start| {
            FaultPlan::scripted(vec![Fault::OutOfRange {
                from: start + TimeDelta::hours(2),
                to: start + TimeDelta::hours(3),
            }])
        },
        ..Plan::new("out-of-range")
    });
    let seqs = glucose_seqs(&o);
    // Every record the sensor holds, once, in order: offsets a minute
    // apart with no hole where the hour out of range was.
    // (A record made at the very instant the phone stopped is the next
    // run's: the sensor keeps it.)
    let held: Vec<u64> = o
        .cgm_held
        .iter()
        .map(|&x| u64::from(x))
        .filter(|&x| x < 5 * 60)
        .collect();
    assert!(
        seqs == held,
        "phone {} records ({:?}..), sensor {} ({:?}..)",
        seqs.len(),
        seqs.last(),
        held.len(),
        held.last()
    );
    assert!(
        held.windows(2).all(|w| w[1] == w[0] + 1),
        "a hole in {held:?}"
    );
    assert!(held.len() >= 5 * 60 - 2, "{}", held.len());
    let b = Buffer::open_shared(&o.buffer, BufferConfig::default()).unwrap();
    assert!(
        b.gaps(&DeviceId("cgm-1".into()), Stream::Glucose)
            .unwrap()
            .is_empty()
    );
    let _ = &o.heard;
}

#[test]
fn a_full_buffer_keeps_alerts_and_record_data_and_tells_the_host() {
    let o = run(Plan {
        offline: TimeDelta::hours(3),
        online: TimeDelta::minutes(30),
        budget: Some(2_500_000),
        lows: true,
        ..Plan::new("buffer-full")
    });
    // Alarms raised while the buffer was under pressure all reached the
    // cloud (the checker also asserts each was stored exactly once).
    assert!(
        o.raised > 0,
        "no alert raised: the scenario would prove nothing"
    );
    let events = o.heard.buffer_events.lock().unwrap().clone();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, BufferEvent::Pressure { .. })),
        "no pressure event reached the host"
    );
    assert!(events.iter().any(|e| matches!(e, BufferEvent::Evicted(_))));
    let b = Buffer::open_shared(&o.buffer, BufferConfig::default()).unwrap();
    let strap = DeviceId("strap-1".into());
    let rr = b.completeness(&strap, Stream::RrInterval).unwrap();
    // Record data leaves the phone only once the cloud holds it.
    assert_eq!(rr.evicted_unsent, 0, "unsent record data evicted");
    assert!(rr.received > 0);
    let hr = b.completeness(&strap, Stream::HeartRate).unwrap();
    assert!(hr.evicted_unsent > 0, "trend data was not reduced: {hr:?}");
    assert_eq!(o.raised as u64, o.summary.alerts);
    eprintln!(
        "buffer-full: sessions stopped by a full buffer: {}",
        o.stopped_full
    );
}
