//! The sync engine against an in-memory server on tokio's paused clock:
//! acknowledgement bookkeeping on a real SQLite buffer, retries and
//! `Retry-After`, the 401 refresh, network and battery policy, immediate
//! alerts, and coalesced wake-ups. The same engine against the real ingest
//! service is in `tests/e2e`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::await_holding_lock
)] // The in-memory server fails loudly.

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::mpsc;
use vigil_core::alerts::{AlertEvent, AlertKind, Phase};
use vigil_core::clock::TokioClock;
use vigil_core::model::{DeviceId, PatientId, Provenance, Quality, Reading, Stream};
use vigil_core::store::{Buffer, BufferConfig, OutboxAlert, SyncState};
use vigil_core::sync::{
    HttpReply, Network, Poster, Power, Route, SyncConfig, SyncEngine, SyncEvent, SyncHandle,
    TokenProvider, WaitReason,
};
use vigil_core::wire::{self, AlertAck, BatchAck, ContentEncoding, Format, SeqRange, StreamAck};

/// A canned answer instead of the normal acknowledgement.
#[derive(Clone)]
struct Canned {
    status: u16,
    retry_after: Option<Duration>,
}

#[derive(Default)]
struct ServerState {
    /// Keys stored: (stream, session, seq).
    stored: BTreeSet<(String, Option<i64>, u64)>,
    /// Every request: route and the token it carried.
    requests: Vec<(Route, Option<String>, tokio::time::Instant)>,
    alerts: Vec<(String, Phase)>,
    /// The device each alert named.
    alert_devices: Vec<Option<String>>,
    heartbeats: usize,
    /// Body-less contact heartbeats.
    contacts: usize,
    canned: VecDeque<Canned>,
    /// Only this token is accepted, when set.
    accept_token: Option<String>,
    /// Batches to store and then answer with a lost connection (the ack
    /// is lost after the commit).
    cut_after_commit: usize,
    /// Batches to store and then never answer (the phone is killed while
    /// it waits).
    hang_after_commit: usize,
    /// Every (stream, session, seq) the phone sent, duplicates included.
    received: Vec<(String, Option<i64>, u64)>,
    /// Batches with more readings than this get `413`.
    max_batch: Option<usize>,
    /// Batches carrying this stream get `400`.
    refuse_stream: Option<String>,
    /// Readings per accepted batch.
    batch_sizes: Vec<usize>,
}

/// An in-memory ingest service: decodes batches with the shared wire code,
/// stores keys once, acknowledges everything it stored.
#[derive(Clone, Default)]
struct FakeServer(Arc<Mutex<ServerState>>);

impl FakeServer {
    fn state(&self) -> std::sync::MutexGuard<'_, ServerState> {
        self.0.lock().unwrap()
    }
}

#[async_trait]
impl Poster for FakeServer {
    async fn post(
        &self,
        route: Route,
        content_type: &'static str,
        content_encoding: Option<&'static str>,
        body: Vec<u8>,
        token: Option<&str>,
    ) -> vigil_core::Result<HttpReply> {
        let reply = self.answer(route, content_type, content_encoding, body, token);
        if let Err(vigil_core::Error::Device(_)) = reply {
            // Committed, and the answer never comes.
            std::future::pending::<()>().await;
        }
        reply
    }
}

impl FakeServer {
    fn answer(
        &self,
        route: Route,
        content_type: &'static str,
        content_encoding: Option<&'static str>,
        body: Vec<u8>,
        token: Option<&str>,
    ) -> vigil_core::Result<HttpReply> {
        let mut s = self.state();
        s.requests.push((
            route,
            token.map(str::to_string),
            tokio::time::Instant::now(),
        ));
        let reply = |status: u16, body: Vec<u8>| HttpReply {
            status,
            retry_after: None,
            body,
        };
        if let Some(want) = &s.accept_token {
            if token != Some(want.as_str()) {
                return Ok(reply(401, vec![]));
            }
        }
        if let Some(c) = s.canned.pop_front() {
            return Ok(HttpReply {
                status: c.status,
                retry_after: c.retry_after,
                body: vec![],
            });
        }
        match route {
            Route::Batches => {
                let format = Format::from_content_type(content_type).unwrap();
                let enc = ContentEncoding::parse(content_encoding.unwrap_or("")).unwrap();
                let batch = wire::decode_batch(&body, format, enc).unwrap();
                let size: usize = batch
                    .streams
                    .iter()
                    .map(|g| g.readings.len() + g.held_back.len())
                    .sum();
                if s.max_batch.is_some_and(|m| size > m) {
                    return Ok(reply(413, vec![]));
                }
                if let Some(refused) = &s.refuse_stream {
                    if batch.streams.iter().any(|g| g.stream.as_str() == refused) {
                        return Ok(reply(400, vec![]));
                    }
                }
                s.batch_sizes.push(size);
                let mut streams = Vec::new();
                for g in &batch.streams {
                    let seqs: Vec<u64> = g
                        .readings
                        .iter()
                        .map(|r| r.seq)
                        .chain(g.held_back.iter().map(|h| h.seq))
                        .collect();
                    for q in &seqs {
                        let key = (g.stream.as_str().to_string(), g.session, *q);
                        s.received.push(key.clone());
                        s.stored.insert(key);
                    }
                    streams.push(StreamAck {
                        stream: g.stream,
                        session: g.session,
                        stored: SeqRange::coalesce(seqs),
                        rejected: vec![],
                    });
                }
                if s.cut_after_commit > 0 {
                    s.cut_after_commit -= 1;
                    return Err(vigil_core::Error::Network("connection reset".into()));
                }
                if s.hang_after_commit > 0 {
                    s.hang_after_commit -= 1;
                    return Err(vigil_core::Error::Device("hang".into()));
                }
                let ack = BatchAck {
                    v: 1,
                    batch: batch.id,
                    duplicate: false,
                    streams,
                };
                Ok(reply(200, wire::json::to_vec(&ack).unwrap()))
            }
            Route::Alerts => {
                let alert: wire::Alert = wire::json::from_slice(&body).unwrap();
                s.alerts.push((alert.id.clone(), alert.phase));
                s.alert_devices
                    .push(alert.device.as_ref().map(|d| d.0.clone()));
                let ack = AlertAck {
                    v: 1,
                    id: alert.id,
                    phase: alert.phase,
                    time: alert.time,
                    duplicate: false,
                };
                Ok(reply(200, wire::json::to_vec(&ack).unwrap()))
            }
            Route::Heartbeats if body.is_empty() => {
                s.contacts += 1;
                Ok(reply(204, vec![]))
            }
            Route::Heartbeats => {
                let hb: wire::Heartbeat = wire::json::from_slice(&body).unwrap();
                hb.validate().unwrap();
                s.heartbeats += 1;
                Ok(reply(202, vec![]))
            }
        }
    }
}

/// Hands out "old" until refreshed, then "new"; counts refreshes.
#[derive(Default)]
struct RotatingToken {
    refreshes: AtomicUsize,
}

impl TokenProvider for RotatingToken {
    fn token(&self) -> Option<String> {
        Some(if self.refreshes.load(Ordering::SeqCst) == 0 {
            "old".into()
        } else {
            "new".into()
        })
    }
    fn refresh(&self) -> Option<String> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        self.token()
    }
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn glucose(seq: u64, value: f64) -> Reading {
    let time = t0() + TimeDelta::minutes(5 * seq as i64);
    Reading {
        patient: PatientId("p-1".into()),
        stream: Stream::Glucose,
        value,
        sensor_time: time,
        receive_time: time,
        sequence: seq,
        quality: Quality::default(),
        provenance: Provenance {
            device: DeviceId("cgm-1".into()),
            characteristic: 0x2AA7,
            raw: vec![],
            session: Some(1),
        },
    }
}

fn rr(seq: u64) -> Reading {
    Reading {
        stream: Stream::RrInterval,
        value: 0.8 + (seq % 7) as f64 / 100.0,
        sensor_time: t0() + TimeDelta::seconds(seq as i64),
        provenance: Provenance {
            device: DeviceId("strap-1".into()),
            characteristic: 0x2A37,
            raw: vec![],
            session: None,
        },
        ..glucose(seq, 0.0)
    }
}

struct Fixture {
    _dir: TempDir,
    path: PathBuf,
    server: FakeServer,
    events: mpsc::UnboundedReceiver<SyncEvent>,
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(format!(
        "vigil-sync-engine-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("buffer.db");
    let (_, events) = mpsc::unbounded_channel();
    Fixture {
        _dir: TempDir(dir),
        path,
        server: FakeServer::default(),
        events,
    }
}

fn start(f: &mut Fixture, config: SyncConfig, tokens: Arc<dyn TokenProvider>) -> SyncHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    f.events = rx;
    SyncEngine::start_with_poster(
        f.path.clone(),
        PatientId("p-1".into()),
        config,
        tokens,
        tx,
        Arc::new(TokioClock::new(t0())),
        Arc::new(f.server.clone()),
    )
    .unwrap()
}

fn token() -> Arc<dyn TokenProvider> {
    Arc::new(vigil_core::sync::StaticToken("t".into()))
}

fn pipeline(f: &Fixture) -> Buffer {
    Buffer::open(&f.path, BufferConfig::default()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn acknowledged_readings_are_marked_synced_and_a_failed_send_rolls_back() {
    let mut f = fixture();
    let mut b = pipeline(&f);
    let line: Vec<Reading> = (0..50).map(|s| glucose(s, 100.0 + s as f64)).collect();
    let beats: Vec<Reading> = (0..300).map(rr).collect();
    b.insert(&line).unwrap();
    b.insert(&beats).unwrap();
    let h = start(&mut f, SyncConfig::default(), token());
    f.server.state().canned.push_back(Canned {
        status: 503,
        retry_after: None,
    });
    let failed = h.sync_now().await.unwrap();
    assert!(failed.failure.is_some());
    assert_eq!(b.count(None, Some(SyncState::InFlight)).unwrap(), 0);
    assert_eq!(b.count(None, Some(SyncState::Unsent)).unwrap(), 350);

    let ok = h.sync_now().await.unwrap();
    assert_eq!(ok.failure, None);
    assert_eq!(ok.readings_stored, 350);
    assert_eq!(b.count(None, Some(SyncState::Acknowledged)).unwrap(), 350);
    // The straight glucose line travelled reduced, the RR intervals whole,
    // and the server holds every key once.
    let s = f.server.state();
    assert_eq!(s.stored.len(), 350);
    drop(s);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_and_nothing_is_sent_before_it() {
    let mut f = fixture();
    let mut b = pipeline(&f);
    b.insert(&[glucose(0, 100.0), glucose(1, 101.0)]).unwrap();
    let h = start(&mut f, SyncConfig::default(), token());
    f.server.state().canned.push_back(Canned {
        status: 429,
        retry_after: Some(Duration::from_secs(120)),
    });
    let first = h.sync_now().await.unwrap();
    assert!(first.failure.unwrap().contains("429"));
    let sent_at = f.server.state().requests.last().unwrap().2;
    tokio::time::sleep(Duration::from_secs(119)).await;
    assert_eq!(f.server.state().requests.len(), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = f.server.state();
    let batches: Vec<_> = s
        .requests
        .iter()
        .filter(|r| r.0 == Route::Batches)
        .collect();
    assert_eq!(batches.len(), 2);
    assert!(batches[1].2 - sent_at >= Duration::from_secs(120));
    drop(s);
    assert_eq!(b.count(None, Some(SyncState::Acknowledged)).unwrap(), 2);
    let mut retrying = false;
    while let Ok(e) = f.events.try_recv() {
        if let SyncEvent::Retrying { after, .. } = e {
            assert_eq!(after, Duration::from_secs(120));
            retrying = true;
        }
    }
    assert!(retrying);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn backoff_grows_between_failures_and_resets_after_success() {
    let mut f = fixture();
    let mut b = pipeline(&f);
    b.insert(&[glucose(0, 100.0)]).unwrap();
    let h = start(&mut f, SyncConfig::default(), token());
    for _ in 0..4 {
        f.server.state().canned.push_back(Canned {
            status: 500,
            retry_after: None,
        });
    }
    h.sync_now().await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let s = f.server.state();
    let times: Vec<_> = s.requests.iter().map(|r| r.2).collect();
    assert_eq!(times.len(), 5, "four failures then success");
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    // 1, 2, 4, 8 s, each within ±30 % jitter.
    for (i, g) in gaps.iter().enumerate() {
        let base = 2f64.powi(i as i32);
        assert!(
            *g >= base * 0.7 - 1e-6 && *g <= base * 1.3 + 1e-6,
            "{gaps:?}"
        );
    }
    drop(s);
    assert_eq!(b.count(None, Some(SyncState::Acknowledged)).unwrap(), 1);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_401_refreshes_the_token_once_and_retries() {
    let mut f = fixture();
    let mut b = pipeline(&f);
    b.insert(&[glucose(0, 100.0)]).unwrap();
    f.server.state().accept_token = Some("new".into());
    let tokens = Arc::new(RotatingToken::default());
    let h = start(&mut f, SyncConfig::default(), tokens.clone());
    let r = h.sync_now().await.unwrap();
    assert_eq!(r.failure, None);
    assert_eq!(tokens.refreshes.load(Ordering::SeqCst), 1);
    let carried: Vec<_> = f
        .server
        .state()
        .requests
        .iter()
        .map(|r| r.1.clone().unwrap())
        .collect();
    assert_eq!(carried, vec!["old", "new"]);
    assert_eq!(b.count(None, Some(SyncState::Acknowledged)).unwrap(), 1);
    // A token the server never accepts: one refresh per failure, then the
    // app hears about it.
    f.server.state().accept_token = Some("never".into());
    b.insert(&[glucose(1, 100.0)]).unwrap();
    let r = h.sync_now().await.unwrap();
    assert_eq!(r.failure.as_deref(), Some("unauthorized"));
    assert_eq!(tokens.refreshes.load(Ordering::SeqCst), 2);
    let mut unauthorized = false;
    while let Ok(e) = f.events.try_recv() {
        unauthorized |= e == SyncEvent::Unauthorized;
    }
    assert!(unauthorized);
    h.stop().await;
}

fn outbox_alert(id: &str, phase: Phase) -> OutboxAlert {
    outbox_alert_at(id, phase, t0())
}

fn outbox_alert_at(id: &str, phase: Phase, time: DateTime<Utc>) -> OutboxAlert {
    let event = AlertEvent {
        id: id.into(),
        kind: AlertKind::UrgentLow,
        phase,
        time,
        glucose_mg_dl: Some(50.0),
        rate_mg_dl_per_min: None,
        battery_pct: None,
        session_expires_at: None,
        device: Some("cgm-1".into()),
    };
    OutboxAlert {
        id: id.into(),
        kind: "urgent_low".into(),
        phase: format!("{phase:?}").to_lowercase(),
        time,
        value: Some(50.0),
        payload: serde_json::to_vec(&event).unwrap(),
    }
}

#[tokio::test(start_paused = true)]
async fn alerts_go_at_once_on_a_metered_network_and_low_battery_while_batches_wait() {
    let mut f = fixture();
    let mut b = pipeline(&f);
    b.insert(&[glucose(0, 100.0)]).unwrap();
    let config = SyncConfig {
        wait_for_unmetered: true,
        ..SyncConfig::default()
    };
    let h = start(&mut f, config, token());
    h.set_network(Network::Cellular);
    h.set_power(Power {
        percent: 5,
        charging: false,
    });
    b.enqueue_alert(&outbox_alert("00000000000000aa", Phase::Start))
        .unwrap();
    h.alert_enqueued();
    let r = h.sync_now().await.unwrap();
    assert_eq!(r.waiting, Some(WaitReason::MeteredNetwork));
    {
        let s = f.server.state();
        // The alert names the device that raised it.
        assert_eq!(s.alert_devices, vec![Some("cgm-1".to_string())]);
        assert_eq!(
            s.alerts,
            vec![("00000000000000aa".to_string(), Phase::Start)]
        );
        assert!(s.requests.iter().all(|r| r.0 != Route::Batches));
    }
    assert!(b.pending_alerts().unwrap().is_empty());
    // Wi-Fi, but the battery is low and not charging: batches still wait.
    h.set_network(Network::Wifi);
    let r = h.sync_now().await.unwrap();
    assert_eq!(r.waiting, Some(WaitReason::LowBattery));
    assert_eq!(b.count(None, Some(SyncState::Unsent)).unwrap(), 1);
    // Plugged in: they go.
    h.set_power(Power {
        percent: 5,
        charging: true,
    });
    let r = h.sync_now().await.unwrap();
    assert_eq!(r.waiting, None);
    assert_eq!(b.count(None, Some(SyncState::Acknowledged)).unwrap(), 1);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn every_re_alert_of_an_episode_reaches_the_cloud() {
    let mut f = fixture();
    let mut b = pipeline(&f);
    let h = start(&mut f, SyncConfig::default(), token());
    h.set_network(Network::Wifi);
    let id = "00000000000000cc";
    for (phase, minutes) in [
        (Phase::Start, 0),
        (Phase::Realert, 30),
        (Phase::Realert, 60),
        (Phase::End, 70),
    ] {
        let at = t0() + chrono::Duration::minutes(minutes);
        assert!(b.enqueue_alert(&outbox_alert_at(id, phase, at)).unwrap());
        h.alert_enqueued();
    }
    h.sync_now().await.unwrap();
    let phases: Vec<Phase> = f.server.state().alerts.iter().map(|a| a.1).collect();
    assert_eq!(
        phases,
        vec![Phase::Start, Phase::Realert, Phase::Realert, Phase::End]
    );
    assert!(b.pending_alerts().unwrap().is_empty());
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_alert_is_retried_until_acknowledged_and_waits_out_a_network_loss() {
    let mut f = fixture();
    let mut b = pipeline(&f);
    let h = start(&mut f, SyncConfig::default(), token());
    h.set_network(Network::None);
    b.enqueue_alert(&outbox_alert("00000000000000bb", Phase::Start))
        .unwrap();
    h.alert_enqueued();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(f.server.state().requests.is_empty());
    for _ in 0..3 {
        f.server.state().canned.push_back(Canned {
            status: 502,
            retry_after: None,
        });
    }
    h.set_network(Network::Cellular);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let s = f.server.state();
    let tries = s.requests.iter().filter(|r| r.0 == Route::Alerts).count();
    assert_eq!(tries, 4);
    assert_eq!(s.alerts.len(), 1);
    drop(s);
    assert!(b.pending_alerts().unwrap().is_empty());
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn with_nothing_to_send_the_engine_wakes_only_for_its_timers() {
    let mut f = fixture();
    let config = SyncConfig {
        interval: Duration::from_secs(15 * 60),
        heartbeat_interval: Duration::from_secs(60 * 60),
        contact_interval: Duration::from_secs(60 * 60),
        ..SyncConfig::default()
    };
    let h = start(&mut f, config, token());
    tokio::time::sleep(Duration::from_secs(24 * 3600 + 1)).await;
    // 96 batch timers a day; the 24 heartbeats fall on batch timers and
    // share their wake-ups.
    assert_eq!(h.wakeups(), 96);
    assert_eq!(f.server.state().heartbeats, 24);
    assert!(
        f.server
            .state()
            .requests
            .iter()
            .all(|r| r.0 == Route::Heartbeats)
    );
    // Without a network the engine sets no timer at all.
    h.set_network(Network::None);
    tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
    assert_eq!(h.wakeups(), 96);
    h.stop().await;
}

/// Feeds `n` 5-minute glucose readings from `seq` on, one per 5 minutes
/// of (paused) time, each from `value(i)`.
async fn feed(b: &mut Buffer, h: &SyncHandle, seq: &mut u64, n: u64, value: impl Fn(u64) -> f64) {
    for i in 0..n {
        b.insert(&[glucose(*seq, value(i))]).unwrap();
        h.readings_stored(1);
        *seq += 1;
        tokio::time::sleep(Duration::from_secs(300)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn steady_glucose_stretches_batches_contact_fills_the_gaps_and_movement_ends_the_stretch() {
    let mut f = fixture();
    let mut b = pipeline(&f);
    let start_at = tokio::time::Instant::now();
    let h = start(&mut f, SyncConfig::default(), token());
    let mut seq = 0;
    // Eight hours of steady, in-range glucose that zigzags by 8 mg/dL,
    // so reduction keeps every reading and decides each at once (a flat
    // trace would leave its segment open for up to an hour whatever the
    // cadence).
    feed(&mut b, &h, &mut seq, 96, |i| 110.0 + (i % 2) as f64 * 8.0).await;
    let steady_end = tokio::time::Instant::now();
    {
        let s = f.server.state();
        let late: Vec<_> = s
            .requests
            .iter()
            .filter(|r| r.2 >= start_at + Duration::from_secs(2 * 3600))
            .collect();
        let batches = late.iter().filter(|r| r.0 == Route::Batches).count();
        // Six steady hours: one batch about every 56 minutes, not 24.
        assert!((5..=8).contains(&batches), "{batches} batches in 6 h");
        // Never 28 minutes without contact.
        for w in late.windows(2) {
            assert!(w[1].2 - w[0].2 <= Duration::from_secs(28 * 60), "a gap");
        }
        assert!(s.contacts >= 4, "{} contact heartbeats", s.contacts);
    }
    // Glucose falls 3 mg/dL every 5 minutes: back on 15-minute batches.
    feed(&mut b, &h, &mut seq, 18, |i| {
        108.0 - 3.0 * i as f64 + (i % 2) as f64 * 8.0
    })
    .await;
    let s = f.server.state();
    let falling = s
        .requests
        .iter()
        .filter(|r| r.0 == Route::Batches && r.2 > steady_end + Duration::from_secs(15 * 60))
        .count();
    assert!(falling >= 4, "{falling} batches in the falling 75 minutes");
    drop(s);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn with_the_stretch_off_batches_keep_the_configured_interval() {
    let mut f = fixture();
    let mut b = pipeline(&f);
    let config = SyncConfig {
        stable_interval: Duration::from_secs(15 * 60),
        ..SyncConfig::default()
    };
    let h = start(&mut f, config, token());
    let mut seq = 0;
    feed(&mut b, &h, &mut seq, 48, |i| 110.0 + (i % 2) as f64 * 8.0).await;
    let s = f.server.state();
    let batches = s.requests.iter().filter(|r| r.0 == Route::Batches).count();
    assert!(batches >= 15, "{batches} batches in 4 h");
    assert_eq!(s.contacts, 0, "batches are the contact");
    drop(s);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn enough_waiting_readings_send_a_batch_before_the_timer() {
    let mut f = fixture();
    let mut b = pipeline(&f);
    let config = SyncConfig {
        batch_max: 100,
        ..SyncConfig::default()
    };
    let h = start(&mut f, config, token());
    let beats: Vec<Reading> = (0..100).map(rr).collect();
    b.insert(&beats[..50]).unwrap();
    h.readings_stored(50);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(f.server.state().requests.is_empty());
    b.insert(&beats[50..]).unwrap();
    h.readings_stored(50);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(b.count(None, Some(SyncState::Acknowledged)).unwrap(), 100);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_lost_acknowledgement_leaves_readings_unsent_and_the_resend_settles_them() {
    let mut f = fixture();
    let mut b = pipeline(&f);
    let beats: Vec<Reading> = (0..40).map(rr).collect();
    b.insert(&beats).unwrap();
    f.server.state().cut_after_commit = 1;
    let h = start(&mut f, SyncConfig::default(), token());
    let r = h.sync_now().await.unwrap();
    assert!(r.failure.is_some());
    // The server holds them, but no ack said so: they are not synced.
    assert_eq!(f.server.state().stored.len(), 40);
    assert_eq!(b.count(None, Some(SyncState::Unsent)).unwrap(), 40);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(b.count(None, Some(SyncState::Acknowledged)).unwrap(), 40);
    let s = f.server.state();
    assert_eq!(s.received.len(), 80, "sent exactly twice");
    assert_eq!(s.stored.len(), 40);
    drop(s);
    h.stop().await;
}

#[test]
fn a_kill_while_waiting_for_the_ack_costs_one_resend_and_loses_nothing() {
    let mut f = fixture();
    let mut b = pipeline(&f);
    let beats: Vec<Reading> = (0..25).map(rr).collect();
    b.insert(&beats).unwrap();
    f.server.state().hang_after_commit = 1;
    // The "process": a runtime dropped while the engine awaits the answer,
    // so nothing of the engine runs after the kill.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let h = rt.block_on(async { start(&mut f, SyncConfig::default(), token()) });
    rt.block_on(async {
        let sync = h.sync_now();
        tokio::select! {
            r = sync => panic!("the server never answers: {r:?}"),
            () = tokio::time::sleep(Duration::from_millis(300)) => {}
        }
    });
    assert_eq!(b.count(None, Some(SyncState::InFlight)).unwrap(), 25);
    drop(h);
    drop(rt);
    // Restart: opening the buffer returns the batch to unsent, and the
    // resend is settled.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let h = start(&mut f, SyncConfig::default(), token());
        let r = h.sync_now().await.unwrap();
        assert_eq!(r.failure, None);
        h.stop().await;
    });
    assert_eq!(b.count(None, Some(SyncState::Acknowledged)).unwrap(), 25);
    let s = f.server.state();
    assert_eq!(s.received.len(), 50);
    assert_eq!(s.stored.len(), 25);
}

#[tokio::test(start_paused = true)]
async fn a_413_halves_the_batch_until_it_fits_and_everything_arrives() {
    let mut f = fixture();
    let mut b = pipeline(&f);
    let beats: Vec<Reading> = (0..300).map(rr).collect();
    b.insert(&beats).unwrap();
    f.server.state().max_batch = Some(70);
    let config = SyncConfig {
        batch_max: 256,
        ..SyncConfig::default()
    };
    let h = start(&mut f, config, token());
    let r = h.sync_now().await.unwrap();
    assert_eq!(r.failure, None, "{r:?}");
    assert_eq!(r.readings_stored, 300);
    assert_eq!(b.count(None, Some(SyncState::Acknowledged)).unwrap(), 300);
    let s = f.server.state();
    // 256 and 128 were refused; 64 fits and stays the size.
    assert!(
        s.batch_sizes.iter().all(|&n| n <= 64),
        "{:?}",
        s.batch_sizes
    );
    assert_eq!(s.batch_sizes.iter().sum::<usize>(), 300);
    assert_eq!(s.stored.len(), 300);
    drop(s);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_stream_the_server_refuses_does_not_hold_back_the_others() {
    let mut f = fixture();
    let mut b = pipeline(&f);
    let line: Vec<Reading> = (0..50).map(|s| glucose(s, 100.0 + s as f64)).collect();
    let beats: Vec<Reading> = (0..100).map(rr).collect();
    b.insert(&line).unwrap();
    b.insert(&beats).unwrap();
    f.server.state().refuse_stream = Some("glucose".into());
    let h = start(&mut f, SyncConfig::default(), token());
    let r = h.sync_now().await.unwrap();
    // The heart-rate strap's readings went; the glucose waits, on the
    // phone, and the pass reports the refusal (so it backs off).
    assert!(
        r.failure.as_deref().is_some_and(|f| f.contains("400")),
        "{r:?}"
    );
    assert_eq!(r.readings_stored, 100);
    assert_eq!(
        b.count(Some(Stream::Glucose), Some(SyncState::Unsent))
            .unwrap(),
        50
    );
    let mut refused = false;
    while let Ok(e) = f.events.try_recv() {
        refused |= matches!(
            e,
            SyncEvent::Refused {
                stream: Stream::Glucose,
                ..
            }
        );
    }
    assert!(refused, "no Refused event");
    // Once the server takes it again, the retry settles everything.
    f.server.state().refuse_stream = None;
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(b.count(None, Some(SyncState::Acknowledged)).unwrap(), 150);
    h.stop().await;
}

/// A heart-rate reading from the same strap as [`rr`].
fn heart_rate(seq: u64) -> Reading {
    Reading {
        stream: Stream::HeartRate,
        value: 60.0 + (seq % 5) as f64,
        ..rr(seq)
    }
}

#[tokio::test(start_paused = true)]
async fn one_device_s_streams_share_one_request_and_a_refusal_is_still_the_stream_s_own() {
    let mut f = fixture();
    let mut b = pipeline(&f);
    let rates: Vec<Reading> = (0..60).map(heart_rate).collect();
    let beats: Vec<Reading> = (0..60).map(rr).collect();
    b.insert(&rates).unwrap();
    b.insert(&beats).unwrap();
    let h = start(&mut f, SyncConfig::default(), token());
    let r = h.sync_now().await.unwrap();
    assert_eq!(r.failure, None);
    assert_eq!(r.batches, 1, "heart rate and RR intervals in one request");
    assert_eq!(b.count(None, Some(SyncState::Acknowledged)).unwrap(), 120);
    let mut acknowledged = Vec::new();
    while let Ok(e) = f.events.try_recv() {
        if let SyncEvent::BatchAcknowledged { stream, stored, .. } = e {
            acknowledged.push((stream, stored));
        }
    }
    acknowledged.sort_by_key(|(s, _)| s.as_str());
    assert_eq!(
        acknowledged,
        vec![(Stream::HeartRate, 60), (Stream::RrInterval, 60)],
        "the app hears each stream's share"
    );

    // The server refuses one stream of the joined request: the other
    // still arrives, and only the refused one waits on the phone.
    b.insert(&(60..90).map(heart_rate).collect::<Vec<_>>())
        .unwrap();
    b.insert(&(60..90).map(rr).collect::<Vec<_>>()).unwrap();
    f.server.state().refuse_stream = Some("rr_interval".into());
    let r = h.sync_now().await.unwrap();
    assert!(
        r.failure.as_deref().is_some_and(|f| f.contains("400")),
        "{r:?}"
    );
    assert_eq!(
        b.count(Some(Stream::HeartRate), Some(SyncState::Acknowledged))
            .unwrap(),
        90
    );
    assert_eq!(
        b.count(Some(Stream::RrInterval), Some(SyncState::Unsent))
            .unwrap(),
        30
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_host_s_sync_now_inside_the_server_s_retry_after_sends_no_batch() {
    let mut f = fixture();
    let mut b = pipeline(&f);
    b.insert(&[glucose(0, 100.0), glucose(1, 101.0)]).unwrap();
    let h = start(&mut f, SyncConfig::default(), token());
    f.server.state().canned.push_back(Canned {
        status: 503,
        retry_after: Some(Duration::from_secs(600)),
    });
    assert!(h.sync_now().await.unwrap().failure.unwrap().contains("503"));
    // WorkManager wakes the app a minute later: nothing is sent, and the
    // answer says how long the server asked for.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let r = h.sync_now().await.unwrap();
    assert!(
        r.failure.as_deref().is_some_and(|f| f.contains("540 s")),
        "{r:?}"
    );
    assert_eq!(f.server.state().requests.len(), 1);
    // An alert still goes at once.
    b.enqueue_alert(&outbox_alert("00000000000000dd", Phase::Start))
        .unwrap();
    let r = h.sync_now().await.unwrap();
    assert_eq!(r.alerts_delivered, 1);
    assert_eq!(b.count(None, Some(SyncState::Unsent)).unwrap(), 2);
    // Once the wait is over the engine's own retry sends the readings.
    tokio::time::sleep(Duration::from_secs(541)).await;
    assert_eq!(b.count(None, Some(SyncState::Acknowledged)).unwrap(), 2);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_engine_started_offline_sends_nothing_until_the_host_reports_a_network() {
    let mut f = fixture();
    let mut b = pipeline(&f);
    b.insert(&[glucose(0, 100.0)]).unwrap();
    let config = SyncConfig {
        initial_network: Network::None,
        ..SyncConfig::default()
    };
    let h = start(&mut f, config, token());
    // On a paused clock the engine's first timers would fire at once.
    tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
    assert!(f.server.state().requests.is_empty());
    // With a network, what is overdue goes at once (the heartbeat; the
    // lone reading is an open tail until the next one closes it).
    h.set_network(Network::Wifi);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        f.server
            .state()
            .requests
            .iter()
            .any(|r| r.0 == Route::Heartbeats)
    );
    h.stop().await;
}

/// The CGM's own rate of change, as the session stores it beside glucose.
fn trend(seq: u64, rate: f64) -> Reading {
    Reading {
        stream: Stream::GlucoseTrend,
        ..glucose(seq, rate)
    }
}

#[test]
fn the_cgm_trend_never_travels_and_a_kill_mid_sync_does_not_make_it_pending() {
    let mut f = fixture();
    let mut b = pipeline(&f);
    let line: Vec<Reading> = (0..12)
        .map(|s| glucose(s, 100.0 + 2.0 * s as f64))
        .collect();
    let rates: Vec<Reading> = (0..12).map(|s| trend(s, 0.4)).collect();
    b.insert(&line).unwrap();
    b.insert(&rates).unwrap();
    let device = DeviceId("cgm-1".into());
    let c = b.completeness(&device, Stream::GlucoseTrend).unwrap();
    assert_eq!((c.stored, c.unsent, c.local_only), (12, 0, 12));
    f.server.state().hang_after_commit = 1;
    // Killed while waiting for the first acknowledgement (a runtime
    // dropped mid-await, as in the kill test above).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let h = rt.block_on(async { start(&mut f, SyncConfig::default(), token()) });
    rt.block_on(async {
        let sync = h.sync_now();
        tokio::select! {
            r = sync => panic!("the server never answers: {r:?}"),
            () = tokio::time::sleep(Duration::from_millis(300)) => {}
        }
    });
    assert!(b.count(None, Some(SyncState::InFlight)).unwrap() > 0);
    drop(h);
    drop(rt);
    drop(b);
    // Restart: the buffer reopens, the batch returns to unsent, and the
    // trend readings are still local-only, not pending.
    let b = pipeline(&f);
    let states: Vec<SyncState> = b
        .readings_of(&device, Stream::GlucoseTrend)
        .unwrap()
        .iter()
        .map(|r| r.state)
        .collect();
    assert_eq!(states, vec![SyncState::LocalOnly; 12]);
    assert_eq!(
        b.count(Some(Stream::GlucoseTrend), Some(SyncState::Unsent))
            .unwrap(),
        0
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let h = start(&mut f, SyncConfig::default(), token());
        let r = h.sync_now().await.unwrap();
        assert_eq!(r.failure, None);
        h.stop().await;
    });
    // Every glucose reading settled, nothing left pending, no trend sent.
    assert_eq!(b.count(None, Some(SyncState::Unsent)).unwrap(), 0);
    assert_eq!(b.count(None, Some(SyncState::InFlight)).unwrap(), 0);
    assert_eq!(
        b.count(Some(Stream::Glucose), Some(SyncState::Acknowledged))
            .unwrap(),
        12
    );
    let c = b.completeness(&device, Stream::GlucoseTrend).unwrap();
    assert_eq!((c.acknowledged, c.local_only, c.unsent), (0, 12, 0));
    let s = f.server.state();
    assert!(
        s.received
            .iter()
            .all(|(stream, ..)| stream != "glucose_trend"),
        "a trend reading travelled"
    );
    assert_eq!(s.stored.len(), 12);
}
