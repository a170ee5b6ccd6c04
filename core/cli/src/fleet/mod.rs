//! `vigil demo`: the main job, end to end, on one machine with no setup.
//!
//! It starts the real ingest service in-process on embedded SQLite, sets
//! up a synthetic clinic through the service's admin API (a clinician, the
//! patients, a device token each), and runs a fleet of real SDK instances
//! (the facade every app embeds), one per patient, each with its own
//! SQLite buffer and simulated CGM (some also a heart-rate strap), on
//! accelerated time. The script adds a hypoglycaemia, a sensor out of range
//! and a phone offline for hours ([`script`]). The demo prints the
//! dashboard's URL and the clinician's token, a progress bar of simulated
//! time, what happens (readings synced, the reduction ratio, alerts and
//! their delivery latency to the clinician's live stream), and a summary
//! at Ctrl-C (or after `--for` seconds).
//!
//! Decision: the phones run in this process but share nothing with the
//! service except HTTP over loopback, exactly as phones and a clinic's
//! server do; the demo reads the service's database only for figures.

mod board;
mod cloud;
mod live;
mod phone;
mod script;
pub(crate) mod service;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::TimeDelta;
use vigil_core::api::{Network, Vigil};

use crate::Failure;
use board::Board;
use script::{Script, label};

/// Arguments of `vigil demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of synthetic patients, each one phone running the SDK.
    #[arg(long, default_value_t = 20)]
    patients: usize,
    /// Simulated seconds per wall second. The default, 120, plays one
    /// simulated hour in 30 s: a 5-minute CGM reading every 2.5 s per
    /// patient, and the whole script within three minutes.
    #[arg(long, default_value_t = 120.0)]
    acceleration: f64,
    /// Port on 127.0.0.1 (0: any free port). A taken port falls back to a
    /// free one.
    #[arg(long, default_value_t = 8470)]
    port: u16,
    /// Keep the service's database and the phones' buffers here instead
    /// of a temporary directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Stop by itself after this many wall seconds (else at Ctrl-C).
    #[arg(long = "for", value_name = "SECONDS")]
    run_for: Option<f64>,
    /// How many patients also wear a heart-rate strap (default: a quarter).
    #[arg(long)]
    straps: Option<usize>,
    /// Seed of the simulated physiology.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulated time starts this many hours ago and runs accelerated
    /// until it catches up with the wall clock, then at real speed: the
    /// dashboard shows a filled-in recent history (its views end at now),
    /// and the service never sees readings from its future.
    #[arg(long, default_value_t = 24.0)]
    history_hours: f64,
}

fn other(context: &str) -> impl Fn(std::io::Error) -> Failure + '_ {
    move |e| Failure::Other(format!("{context}: {e}"))
}

fn check(args: &Args) -> Result<(), Failure> {
    if !(1..=200).contains(&args.patients) {
        return Err(Failure::Input(
            "--patients must be between 1 and 200".into(),
        ));
    }
    if !(args.acceleration.is_finite() && (1.0..=100_000.0).contains(&args.acceleration)) {
        return Err(Failure::Input(
            "--acceleration must be between 1 and 100000".into(),
        ));
    }
    if !(args.history_hours.is_finite() && (0.0..=24.0 * 13.0).contains(&args.history_hours)) {
        return Err(Failure::Input(
            "--history-hours must be between 0 and 312 (13 days)".into(),
        ));
    }
    if let Some(s) = args.run_for {
        if !(s.is_finite() && s > 0.0) {
            return Err(Failure::Input(
                "--for must be a positive number of seconds".into(),
            ));
        }
    }
    Ok(())
}

/// Runs `vigil demo`.
pub fn run(args: Args) -> Result<(), Failure> {
    check(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vigil-demo")
        .enable_all()
        .build()
        .map_err(other("cannot start the runtime"))?;
    let temp;
    let dir = match &args.data_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(other("cannot create --data-dir"))?;
            d.clone()
        }
        None => {
            temp = tempfile::tempdir().map_err(other("cannot create a temporary directory"))?;
            temp.path().to_path_buf()
        }
    };
    let service = runtime.block_on(service::start(&dir, args.port, args.patients))?;
    let straps = args.straps.unwrap_or(args.patients.div_ceil(4));
    let script = Script::new(args.patients, straps);
    let length = args
        .run_for
        .map(|s| TimeDelta::milliseconds((s * args.acceleration * 1e3) as i64));
    let history = TimeDelta::milliseconds((args.history_hours * 3_600_000.0) as i64);
    let start_ms = (chrono::Utc::now() - history).timestamp_millis();
    let board = Arc::new(Board::new(args.patients, start_ms, length));

    header(&board, &args, &service, &script, &dir);

    let stop = Arc::new(AtomicBool::new(false));
    let ctrl_c = stop.clone();
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            ctrl_c.store(true, Ordering::SeqCst);
        }
    });
    let ids: HashMap<i64, usize> = service
        .patients
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id, i))
        .collect();
    let listening = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let follower = runtime.spawn(live::follow(
        service.url.clone(),
        service.clinician_token.clone(),
        ids,
        board.clone(),
        listening.clone(),
    ));
    // The clinician's stream is open before the first phone can raise an
    // alert, so every alert's delivery is seen (bounded: the demo goes on
    // without latency figures if the stream cannot open).
    let opened = std::time::Instant::now();
    while !listening.load(Ordering::SeqCst) && opened.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }

    // Each run's phones start with fresh buffers (a kept --data-dir holds
    // earlier runs' phones, whose patients are earlier runs' too).
    let phones_dir = dir.join(format!(
        "phones-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f")
    ));
    std::fs::create_dir_all(&phones_dir).map_err(other("cannot create the phones' folder"))?;
    let setup = phone::Setup {
        dir: &phones_dir,
        url: &service.url,
        script: &script,
        start_ms,
        factor: args.acceleration,
        seed: args.seed,
    };
    let mut phones: Vec<Vigil> = Vec::with_capacity(args.patients);
    for (i, p) in service.patients.iter().enumerate() {
        phones.push(phone::start(i, p, &setup, board.clone())?);
    }
    board.log(&format!(
        "{} phones collecting and syncing; Ctrl-C stops the demo",
        phones.len()
    ));

    drive(&board, &phones, &script, &service, &stop, &args)?;

    board.finish();
    board.say("Stopping the fleet: every phone stops its sessions and sends what it holds.");
    let mut figures = Figures::default();
    for (i, vigil) in phones.iter_mut().enumerate() {
        let _ = vigil.stop();
        vigil.set_network(Network::Wifi);
        // What is left after the last timer sync; a phone that cannot
        // reach the service keeps it in its buffer, as in the field.
        let _ = vigil.sync_now();
        match vigil.status() {
            Ok(s) => figures.add(&s),
            Err(e) => board.say(&format!("{}: no status: {e}", label(i))),
        }
        let _ = vigil.close();
    }
    // Alerts sent by the final syncs reach the stream within milliseconds;
    // a second covers a loaded machine.
    std::thread::sleep(Duration::from_millis(1000));
    follower.abort();
    let cloud = cloud::read(&service.database, &service.patients)?;
    runtime.block_on(service.stop());
    summary(&board, &figures, &cloud, &args);
    if args.data_dir.is_some() {
        board.say(&format!("Kept in {}", dir.display()));
    }
    Ok(())
}

fn header(
    board: &Board,
    args: &Args,
    service: &service::Service,
    script: &Script,
    dir: &std::path::Path,
) {
    board.say(&format!(
        "Vigil demo: {} synthetic patients, each a phone running the SDK with a simulated CGM, \
         syncing to the ingest service on embedded SQLite; simulated time at {}x.",
        args.patients, args.acceleration
    ));
    board.say(&format!("Dashboard: {}/dashboard/", service.url));
    board.say(&format!(
        "Clinician token (demo secret, synthetic clinic; paste it on the sign-in page): {}",
        service.clinician_token
    ));
    board.say(&format!("Data: {}", dir.display()));
    let catch_up = args.history_hours * 3600.0 / (args.acceleration - 1.0).max(1e-9);
    board.say(&format!(
        "Simulated time starts {} h ago and runs at {}x until it catches up with now \
         (after about {:.0} s), then live.",
        args.history_hours, args.acceleration, catch_up
    ));
    board.say("Script:");
    for line in script.describe() {
        board.say(&format!("  - {line}"));
    }
}

/// Totals over the phones' statuses.
#[derive(Debug, Default)]
struct Figures {
    received: u64,
    stored: u64,
    acknowledged: u64,
    unsent: u64,
    pending_alerts: u64,
}

impl Figures {
    fn add(&mut self, s: &vigil_core::api::Status) {
        self.received += s.ledger.received;
        self.stored += s.stored_readings;
        self.acknowledged += s.ledger.acknowledged;
        self.unsent += s.unsent_readings;
        self.pending_alerts += s.pending_alerts;
    }
}

/// Runs the script and the display until Ctrl-C or `--for`.
fn drive(
    board: &Board,
    phones: &[Vigil],
    script: &Script,
    service: &service::Service,
    stop: &AtomicBool,
    args: &Args,
) -> Result<(), Failure> {
    let (offline, period) = script.offline;
    let mut went_offline = false;
    let mut came_back = false;
    let mut next_report = TimeDelta::hours(1);
    let mut next_tick = Duration::ZERO;
    let mut figures = Figures::default();
    while !stop.load(Ordering::SeqCst)
        && args.run_for.is_none_or(|s| board.wall().as_secs_f64() < s)
    {
        let t = board.simulated();
        let on_phone = board.simulated_on(offline);
        if let Some(phone) = phones.get(offline) {
            if !went_offline && on_phone >= period.from {
                went_offline = true;
                board.set_offline(offline, true);
                phone.set_network(Network::None);
                board.log_for(offline, "phone goes offline (no network)");
            }
            if went_offline && !came_back && on_phone >= period.to {
                came_back = true;
                let waiting = phone.status().map(|s| s.unsent_readings).unwrap_or(0);
                phone.set_network(Network::Wifi);
                board.set_offline(offline, false);
                board.log_for(
                    offline,
                    &format!("phone back on Wi-Fi with {waiting} readings waiting in its buffer"),
                );
            }
        }
        if board.wall() >= next_tick {
            next_tick = board.wall() + Duration::from_millis(500);
            figures = Figures::default();
            for p in phones {
                if let Ok(s) = p.status() {
                    figures.add(&s);
                }
            }
            board.tick(
                args.run_for.is_some(),
                format!(
                    "+{}h{:02} simulated ({:.0}x) · {} readings synced · {} alerts raised",
                    t.num_hours(),
                    t.num_minutes() % 60,
                    board.achieved_factor(),
                    figures.acknowledged,
                    board.raised.load(Ordering::Relaxed)
                ),
            );
        }
        if t >= next_report {
            next_report += TimeDelta::hours(1);
            let cloud = cloud::read(&service.database, &service.patients)?;
            let (online, _) = board.latencies();
            board.log(&format!(
                "synced: {} readings acknowledged by the cloud ({} unsent on phones); \
                 reduction: {}; alerts raised {}, on the live stream {}, latency {}",
                figures.acknowledged,
                figures.unsent,
                cloud.reduction_line(),
                board.raised.load(Ordering::Relaxed),
                board.delivered.load(Ordering::Relaxed),
                online.line()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn summary(board: &Board, f: &Figures, cloud: &cloud::CloudFigures, args: &Args) {
    let (online, offline) = board.latencies();
    let simulated = board.simulated();
    let lines = [
        "Summary (synthetic patients):".to_owned(),
        format!(
            "  simulated time: {} h {:02} min in {:.1} s ({}x asked, {:.0}x achieved)",
            simulated.num_hours(),
            simulated.num_minutes() % 60,
            board.wall().as_secs_f64(),
            args.acceleration,
            board.achieved_factor()
        ),
        {
            let (slow, fast) = board.spread();
            format!(
                "  each phone paces its own clock: the slowest reached +{}h{:02}, the fastest +{}h{:02}",
                slow.num_hours(),
                slow.num_minutes() % 60,
                fast.num_hours(),
                fast.num_minutes() % 60
            )
        },
        format!(
            "  readings decoded on the phones: {} ({} stored in their buffers)",
            f.received, f.stored
        ),
        format!(
            "  readings synced: {} (acknowledged by the cloud; {} still in phone buffers)",
            f.acknowledged, f.unsent
        ),
        format!(
            "  in the cloud: {} readings of {} patients; reduction: {}",
            cloud.readings,
            cloud.patients,
            cloud.reduction_line()
        ),
        format!(
            "  alerts raised: {} on the phones; {} seen on the clinician's live stream; {} still in outboxes",
            board.raised.load(Ordering::Relaxed),
            board.delivered.load(Ordering::Relaxed),
            f.pending_alerts
        ),
        format!("  alert delivery latency, phone online: {}", online.line()),
        format!(
            "  alert delivery latency, raised while the phone was offline: {}",
            offline.line()
        ),
    ];
    for l in lines {
        board.say(&l);
    }
}
