//! Alert latency over loopback, on the wall clock (issue 6): from the
//! moment the sensor's bytes reach the SDK to (a) the host app's listener
//! and (b) a clinician's server-sent-events stream, against a bare HTTP
//! round trip on the same machine in the same run.
//!
//! The SDK runs as an app embeds it: `Vigil` with the host-fed transport,
//! a CGM (with E2E-CRC, like the simulated sensor) answered by this bench
//! playing the app's Bluetooth stack, and for (b) the real ingest service
//! in-process on SQLite with a device token, the phone on Wi-Fi, and a
//! clinician connected to `GET /v1/alerts/stream`.
//!
//! Each sample feeds one CGM Measurement of 50 mg/dL (urgent low starts:
//! below 54) and, once the start has arrived everywhere, one of 80 mg/dL
//! (it ends: at least 54 + 5 mg/dL of hysteresis). The alert engine has no
//! hold-off after an end, so the next reading below 54 starts a new
//! episode with a new id; re-alerts only happen inside an episode (every
//! 30 sensor minutes), and readings must be strictly later in sensor time
//! and, for the session, one CGM interval apart (a larger step is a gap
//! that triggers an RACP backfill). So a sample takes two readings, 5
//! sensor minutes apart; with the alternation 50/80 on 5-minute steps the
//! 15-minute rate window holds at most 4 readings, whose slope (at most
//! 1.2 mg/dL/min) raises no fast fall or rise, and the predicted urgent low
//! it implies is silenced under the urgent low and cleared at the 80. The
//! bench checks that urgent low is the only alert raised.
//!
//! Sensor time runs ahead of the wall clock (10 sensor minutes per sample),
//! all of it in the past, so the readings' times are an hour to two days
//! old by the wall clock. The SDK's 60-second ticker would then raise
//! signal loss (no reading for 20 min by the wall clock) between samples;
//! the bench sets `signal_loss_after` to 30 days so that only the measured
//! alert is raised. No other setting is changed.
//!
//! Two SDKs run side by side: one local only, one syncing. In each sample
//! the paths take turns (bare round trip, outbox write, local SDK, syncing
//! SDK), so a change in the machine's load during the run touches them
//! alike, and the order rotates from sample to sample: the first fsync
//! after the pause between samples also commits whatever the rest of the
//! machine left in the file system's journal, and each path should pay
//! that equally often. The floor of (a) is the one durable SQLite write
//! that precedes the listener call (the outbox row), timed alone on the
//! same disk with the SDK's default durability (WAL, `synchronous=FULL`).
//!
//! Samples are paced at least 120 ms apart, start to start: a sample posts
//! two alerts, and the service's default rate limit is 20 requests per
//! second per token. Each SDK's next sample starts only once its previous
//! end has reached the listener (and, for (b), the clinician and the SDK's
//! acknowledgement), so samples never overlap.
//!
//! `cargo bench -p vigil-e2e --bench alert_latency` runs 300 samples per
//! path; without `--bench` (as `cargo test --benches` runs it) 10 samples
//! check the path. The first samples (10, or 2 in quick mode) are warm-up
//! and not counted (the first opens the HTTP connections); the first
//! sample of (b) is printed on its own. The machine's load average before
//! and after is printed with the table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // A bench fails loudly.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use chrono::{Datelike, TimeDelta, Timelike, Utc};
use vigil_core::api::{
    AlertEvent, AlertKind, BufferEvent, ClockMode, DeviceEvent, DeviceEventKind, DeviceKind,
    HostCharacteristic, HostReply, HostRequest, Listener, Network, Phase, ReadingEvent, SyncEvent,
    TransportMode, Vigil, VigilConfig,
};
use vigil_core::codec::SFloat;
use vigil_core::codec::cgm::{
    Annunciation, CgmFeature, CgmMeasurement, CgmSessionStartTime, CgmStatus, DateTime, DstOffset,
    FeatureBits, SampleLocation, SampleType, TimeZone,
};
use vigil_core::codec::racp::{RacpResponse, RacpResponseCode};
use vigil_core::store::{Buffer, BufferConfig, OutboxAlert};
use vigil_core::sync::{HttpPoster, Poster, Route, SyncConfig};
use vigil_e2e::service::Service;
use vigil_ingest::admin;

const CGM: &str = "cgm-bench-1";
/// Into urgent low (below 54 mg/dL).
const LOW_MG_DL: f64 = 50.0;
/// Out of it (at least 54 + 5 mg/dL).
const BACK_MG_DL: f64 = 80.0;
/// The CGM's measurement interval (the session's default: the bench's
/// sensor has no CGM Specific Ops Control Point).
const STEP_MIN: u16 = 5;
/// Start-to-start spacing of samples (see the module docs).
const PACE: Duration = Duration::from_millis(120);
/// Longest wait for any one event before the bench fails.
const WAIT: Duration = Duration::from_secs(20);

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (samples, warmup) = if full { (300, 10) } else { (10, 2) };
    let total = samples + warmup;
    let started = Instant::now();
    let load_before = loadavg();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let service = rt.block_on(Service::start());
    let clinician = {
        let storage = service.store.blocking();
        let token = admin::add_clinician(storage, "bench clinician").unwrap();
        admin::assign(storage, "bench clinician", service.patient).unwrap();
        token.expose().to_owned()
    };
    let sse = rt.block_on(Sse::connect(&service.url, &clinician));
    let bare = Bare::start(&rt);
    let floor_dir = tempfile::tempdir().unwrap();
    let mut floor =
        Buffer::open(floor_dir.path().join("floor.db"), BufferConfig::default()).unwrap();
    let mut local = Rig::start(None, total);
    let mut cloud = Rig::start(Some(&service), total);

    // The paths take turns within each sample, so a change in the
    // machine's load during the run touches them alike.
    let mut baseline = Vec::with_capacity(samples);
    let mut outbox = Vec::with_capacity(samples);
    let mut listener = Vec::with_capacity(samples);
    let mut listener_syncing = Vec::with_capacity(samples);
    let mut to_sse = Vec::with_capacity(samples);
    let mut cold = None;
    for i in 0..total {
        let next = Instant::now() + PACE;
        // Whoever goes first after the pause also pays for what the rest
        // of the machine left in the file system's journal meanwhile (an
        // fsync commits it): the order rotates so each path goes first
        // equally often.
        let (mut b, mut o, mut l, mut lc, mut s) = Default::default();
        for turn in 0..4 {
            match (turn + i) % 4 {
                0 => b = bare.round_trip(&rt),
                1 => o = outbox_write(&mut floor, i),
                2 => l = local.sample(None).0,
                _ => (lc, s) = cloud.sample(Some(&sse)),
            }
        }
        let s: Duration = s.unwrap();
        if i == 0 {
            cold = Some(s);
        }
        if i >= warmup {
            baseline.push(b);
            outbox.push(o);
            listener.push(l);
            listener_syncing.push(lc);
            to_sse.push(s);
        }
        sleep_until(next);
    }
    local.stop();
    cloud.stop();
    let load_after = loadavg();

    let base_p50 = percentile(&baseline, 50.0);
    println!();
    println!(
        "alert latency over loopback, wall clock ({} mode)",
        if full { "full" } else { "quick" }
    );
    println!(
        "| path | samples | p50 ms | p99 ms | max ms | p50 / baseline p50 | budget (DESIGN.md) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    row(
        "baseline: bare HTTP POST round trip",
        &baseline,
        base_p50,
        "-",
    );
    row(
        "floor: one durable outbox write (Buffer::enqueue_alert)",
        &outbox,
        base_p50,
        "-",
    );
    row(
        "(a) sensor bytes → host listener (no server)",
        &listener,
        base_p50,
        &budget(&listener, 10.0),
    );
    row(
        "(a) sensor bytes → host listener (syncing to the service)",
        &listener_syncing,
        base_p50,
        &budget(&listener_syncing, 10.0),
    );
    row(
        "(b) sensor bytes → clinician SSE",
        &to_sse,
        base_p50,
        &budget(&to_sse, 100.0),
    );
    if let Some(cold) = cold {
        println!(
            "first alert of (b), on a fresh connection (not counted above): {:.2} ms",
            ms(cold)
        );
    }
    println!(
        "load average (1 min) before / after: {load_before} / {load_after}; bench took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(sse);
    drop(service);
}

// ----- baseline and floor ----------------------------------------------------

/// The SDK's own HTTP client ([`HttpPoster`]: reqwest over rustls, keep-alive
/// pool, the same timeouts) posting a small JSON body to a handler that only
/// answers a small JSON body, on an axum server on 127.0.0.1.
struct Bare {
    poster: HttpPoster,
    body: Vec<u8>,
}

impl Bare {
    fn start(rt: &tokio::runtime::Runtime) -> Bare {
        let url = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let router = axum::Router::new().route(
                Route::Alerts.path(),
                axum::routing::post(|body: axum::body::Bytes| async move {
                    axum::Json(serde_json::json!({ "received": body.len() }))
                }),
            );
            tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            });
            format!("http://{addr}")
        });
        let poster = HttpPoster::new(&SyncConfig {
            server_url: url,
            ..SyncConfig::default()
        })
        .unwrap();
        // About the size of an alert as the SDK posts it.
        let body = serde_json::to_vec(&serde_json::json!({
            "v": 1,
            "id": "0123456789abcdef",
            "patient": "1",
            "kind": "urgent_low",
            "phase": "start",
            "time": "2026-11-25T10:00:00Z",
            "sent_at": "2026-11-25T10:00:00.123456Z",
            "glucose_mg_dl": 50.0,
            "pad": "x".repeat(120),
        }))
        .unwrap();
        Bare { poster, body }
    }

    fn round_trip(&self, rt: &tokio::runtime::Runtime) -> Duration {
        let body = self.body.clone();
        let t0 = Instant::now();
        let reply = rt
            .block_on(
                self.poster
                    .post(Route::Alerts, "application/json", None, body, Some("t")),
            )
            .unwrap();
        let took = t0.elapsed();
        assert_eq!(reply.status, 200);
        took
    }
}

/// What path (a) cannot beat: the outbox write that precedes the
/// listener call, alone, on a buffer on the same disk with the SDK's
/// default durability.
fn outbox_write(buffer: &mut Buffer, i: usize) -> Duration {
    let alert = OutboxAlert {
        id: format!("{i:016x}"),
        kind: "urgent_low".into(),
        phase: "start".into(),
        time: Utc::now(),
        value: Some(LOW_MG_DL),
        payload: vec![b'x'; 200],
    };
    let t0 = Instant::now();
    assert!(buffer.enqueue_alert(&alert).unwrap());
    t0.elapsed()
}

// ----- the SDK ---------------------------------------------------------------

/// What the bench's listener saw, with the instant it saw it.
enum Seen {
    Alert(AlertEvent, Instant),
    Sync(SyncEvent),
    Device(DeviceEvent),
    Reading,
}

/// The app: timestamps alerts, and answers the core's Bluetooth requests
/// as a CGM with E2E-CRC and an empty record store would.
struct App {
    sdk: OnceLock<Weak<Vigil>>,
    sensor: Sensor,
    seen: Mutex<Sender<Seen>>,
}

impl App {
    fn tell(&self, s: Seen) {
        let _ = self.seen.lock().unwrap().send(s);
    }
}

impl Listener for App {
    fn on_reading(&self, r: ReadingEvent) {
        let _ = r;
        self.tell(Seen::Reading);
    }
    fn on_alert(&self, a: AlertEvent) {
        let at = Instant::now();
        self.tell(Seen::Alert(a, at));
    }
    fn on_device_event(&self, e: DeviceEvent) {
        self.tell(Seen::Device(e));
    }
    fn on_sync_event(&self, e: SyncEvent) {
        self.tell(Seen::Sync(e));
    }
    fn on_buffer_event(&self, _: BufferEvent) {}
    fn on_host_request(&self, r: HostRequest) {
        let Some(sdk) = self.sdk.get().and_then(Weak::upgrade) else {
            return;
        };
        // The 128-bit form: `0000xxxx-0000-1000-8000-00805f9b34fb`.
        let short = r
            .characteristic
            .as_deref()
            .and_then(|c| c.get(4..8))
            .map(str::to_ascii_lowercase);
        let reply = match (r.command.as_str(), short.as_deref()) {
            ("discover", _) => HostReply::Characteristics {
                characteristics: [
                    ("2aa7", 0x10), // CGM Measurement: notify
                    ("2a52", 0x28), // RACP: write, indicate
                    ("2aa8", 0x02), // Feature: read
                    ("2aa9", 0x02), // Status: read
                    ("2aaa", 0x02), // Session Start Time: read
                ]
                .iter()
                .map(|(uuid, properties)| HostCharacteristic {
                    service: "181f".into(),
                    uuid: (*uuid).into(),
                    properties: *properties,
                })
                .collect(),
            },
            ("read", Some("2aa8")) => HostReply::Value {
                value: self.sensor.feature.clone(),
            },
            ("read", Some("2aa9")) => HostReply::Value {
                value: self.sensor.status.clone(),
            },
            ("read", Some("2aaa")) => HostReply::Value {
                value: self.sensor.start_time.clone(),
            },
            _ => HostReply::Done,
        };
        sdk.complete_host_request(r.token, reply).unwrap();
        if r.command == "write" && short.as_deref() == Some("2a52") {
            // Report Stored Records: this sensor holds none yet.
            let done = RacpResponse::ResponseCode {
                request_op_code: 0x01,
                code: RacpResponseCode::NoRecordsFound,
            };
            sdk.feed_host_bytes(CGM, "2a52", done.encode()).unwrap();
        }
    }
}

/// A CGM whose session started `span_min` minutes ago, with E2E-CRC.
struct Sensor {
    feature: Vec<u8>,
    status: Vec<u8>,
    start_time: Vec<u8>,
}

impl Sensor {
    fn new(span_min: u16) -> Sensor {
        let start = Utc::now() - TimeDelta::minutes(i64::from(span_min));
        let feature = CgmFeature {
            features: FeatureBits::from_bits(FeatureBits::E2E_CRC).unwrap(),
            sample_type: SampleType::InterstitialFluid,
            sample_location: SampleLocation::SubcutaneousTissue,
            crc: 0,
        }
        .encode();
        let status = CgmStatus {
            time_offset_min: span_min,
            status: Annunciation::default(),
            crc: Some(0),
        }
        .encode();
        let start_time = CgmSessionStartTime {
            start: DateTime {
                year: u16::try_from(start.year()).unwrap(),
                month: start.month() as u8,
                day: start.day() as u8,
                hours: start.hour() as u8,
                minutes: start.minute() as u8,
                seconds: start.second() as u8,
            },
            time_zone: TimeZone::from_raw(0).unwrap(),
            dst: DstOffset::Standard,
            crc: Some(0),
        }
        .encode()
        .unwrap();
        Sensor {
            feature,
            status,
            start_time,
        }
    }
}

/// One CGM Measurement notification with E2E-CRC.
fn measurement(mg_dl: f64, offset_min: u16) -> Vec<u8> {
    CgmMeasurement {
        glucose: SFloat::from_f64(mg_dl).unwrap(),
        time_offset_min: offset_min,
        status: None,
        cal_temp: None,
        warning: None,
        trend: None,
        quality: None,
        crc: Some(0),
    }
    .encode()
}

/// One host-fed SDK with its CGM live, ready to raise alerts.
struct Rig {
    sdk: Arc<Vigil>,
    seen: Receiver<Seen>,
    offset: u16,
    ids: std::collections::HashSet<String>,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// An SDK for `samples` alerts: local only (`None`), or syncing to
    /// `service` over Wi-Fi with its device token.
    fn start(service: Option<&Service>, samples: usize) -> Rig {
        // Sensor minutes the run needs (two readings per sample and one
        // before), ending an hour before now.
        let span = u16::try_from((2 * samples + 1) * usize::from(STEP_MIN) + 60).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = VigilConfig::new(dir.path().join("buffer.db"), "bench");
        config.transport = TransportMode::HostFed;
        config.clock = ClockMode::Wall;
        config.alerts.signal_loss_after = vigil_core::clock::Seconds::hours(30 * 24);
        if let Some(service) = service {
            config.patient_id = service.patient.to_string();
            config.server_url = Some(service.url.clone());
            config.token = Some(service.device_token.clone());
        }
        let (tx, rx) = channel();
        let app = Arc::new(App {
            sdk: OnceLock::new(),
            sensor: Sensor::new(span),
            seen: Mutex::new(tx),
        });
        let sdk = Arc::new(Vigil::new(config, app.clone(), None).unwrap());
        app.sdk.set(Arc::downgrade(&sdk)).ok().unwrap();
        if service.is_some() {
            sdk.set_network(Network::Wifi);
        }
        sdk.pair(CGM, DeviceKind::Cgm).unwrap();
        sdk.start().unwrap();
        // Connected, read, subscribed, backfilled (nothing held): live.
        wait_seen(
            &rx,
            "the CGM session to go live",
            |s| matches!(s, Seen::Device(d) if d.kind == DeviceEventKind::WarmingUp),
        );
        sdk.feed_host_bytes(CGM, "2aa7", measurement(BACK_MG_DL, 0))
            .unwrap();
        wait_seen(&rx, "the first reading", |s| matches!(s, Seen::Reading));
        Rig {
            sdk,
            seen: rx,
            offset: 0,
            ids: std::collections::HashSet::new(),
            _dir: dir,
        }
    }

    /// One alert start and end; returns the start's latency to the
    /// listener and, with `sse`, to the clinician. Returns once the end has
    /// arrived everywhere (and the SDK has its acknowledgement), so samples
    /// never overlap.
    fn sample(&mut self, sse: Option<&Sse>) -> (Duration, Option<Duration>) {
        self.offset += STEP_MIN;
        let t0 = Instant::now();
        self.sdk
            .feed_host_bytes(CGM, "2aa7", measurement(LOW_MG_DL, self.offset))
            .unwrap();
        let (start, at_listener) = wait_alert(&self.seen, Phase::Start);
        assert!(self.ids.insert(start.id.clone()), "alert id repeated");
        let at_sse = sse.map(|sse| sse.wait(&start.id, "start"));
        self.offset += STEP_MIN;
        self.sdk
            .feed_host_bytes(CGM, "2aa7", measurement(BACK_MG_DL, self.offset))
            .unwrap();
        let (end, _) = wait_alert(&self.seen, Phase::End);
        assert_eq!(end.id, start.id);
        if let Some(sse) = sse {
            sse.wait(&end.id, "end");
            // The SDK has its acknowledgement: its sync engine is idle.
            let detail = format!("{} end", end.id);
            wait_seen(
                &self.seen,
                "the end's acknowledgement",
                |s| matches!(s, Seen::Sync(e) if e.kind == "alert_delivered" && e.detail == detail),
            );
        }
        (at_listener - t0, at_sse.map(|t| t - t0))
    }

    fn stop(&self) {
        self.sdk.stop().unwrap();
    }
}

/// Waits for the next alert of the sample, failing on any other alert.
fn wait_alert(rx: &Receiver<Seen>, phase: Phase) -> (AlertEvent, Instant) {
    let until = Instant::now() + WAIT;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Seen::Alert(a, at)) => {
                assert_eq!(
                    (a.kind, a.phase, a.device.as_str()),
                    (AlertKind::UrgentLow, phase, CGM),
                    "only urgent low starts and ends are expected"
                );
                return (a, at);
            }
            Ok(Seen::Sync(e)) => assert!(
                !matches!(e.kind.as_str(), "retrying" | "unauthorized"),
                "sync failed: {} {}",
                e.kind,
                e.detail
            ),
            Ok(_) => {}
            Err(_) => panic!("no urgent low {phase:?} at the listener within {WAIT:?}"),
        }
    }
}

fn wait_seen(rx: &Receiver<Seen>, what: &str, mut done: impl FnMut(&Seen) -> bool) {
    let until = Instant::now() + WAIT;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(s) if done(&s) => return,
            Ok(Seen::Alert(a, _)) => panic!("unexpected alert {:?} {:?}", a.kind, a.phase),
            Ok(_) => {}
            Err(_) => panic!("waited {WAIT:?} for {what}"),
        }
    }
}

// ----- the clinician ---------------------------------------------------------

/// A clinician's `GET /v1/alerts/stream`, read as it arrives: every
/// `data:` line's alert id and phase with the instant its chunk came in.
struct Sse {
    events: Mutex<Receiver<(String, String, Instant)>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sse {
    async fn connect(url: &str, token: &str) -> Sse {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut resp = client
            .get(format!("{url}/v1/alerts/stream"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        // The service subscribes before it answers: from here on nothing
        // published is missed.
        assert_eq!(resp.status(), 200);
        let (tx, rx) = channel();
        let task = tokio::spawn(async move {
            let mut pending = Vec::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                let at = Instant::now();
                pending.extend_from_slice(&chunk);
                while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=nl).collect();
                    let Some(data) = line.strip_prefix(b"data:") else {
                        continue;
                    };
                    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
                        continue;
                    };
                    let field = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                    if tx.send((field("alert_id"), field("phase"), at)).is_err() {
                        return;
                    }
                }
            }
        });
        Sse {
            events: Mutex::new(rx),
            task,
        }
    }

    /// The instant the clinician received `id`'s `phase`.
    fn wait(&self, id: &str, phase: &str) -> Instant {
        let rx = self.events.lock().unwrap();
        match rx.recv_timeout(WAIT) {
            Ok((i, p, at)) if i == id && p == phase => at,
            Ok((i, p, _)) => panic!("the clinician got {i} {p} while waiting for {id} {phase}"),
            Err(_) => panic!("alert {phase} not on the clinician's stream within {WAIT:?}"),
        }
    }
}

impl Drop for Sse {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ----- figures ---------------------------------------------------------------

/// The 1-minute load average, as the kernel reports it.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn sleep_until(t: Instant) {
    std::thread::sleep(t.saturating_duration_since(Instant::now()));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile.
fn percentile(v: &[Duration], p: f64) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

/// Whether the p99 is inside the design's budget for the path.
fn budget(v: &[Duration], limit_ms: f64) -> String {
    let within = ms(percentile(v, 99.0)) < limit_ms;
    format!("< {limit_ms} ms: {}", if within { "met" } else { "missed" })
}

fn row(path: &str, v: &[Duration], base_p50: Duration, budget: &str) {
    let p50 = percentile(v, 50.0);
    let max = v.iter().max().copied().unwrap_or_default();
    println!(
        "| {path} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {budget} |",
        v.len(),
        ms(p50),
        ms(percentile(v, 99.0)),
        ms(max),
        ms(p50) / ms(base_p50),
    );
}
