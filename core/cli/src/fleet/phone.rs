//! One patient's phone: a real SDK instance ([`Vigil`], the facade every
//! app uses) with its own SQLite buffer, the service's URL and the
//! patient's device token, simulated devices, and a listener that tells
//! the board what happens.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use vigil_core::api::{
    AlertEvent, BufferEvent, ClockMode, DeviceEvent, DeviceEventKind, DeviceKind, HostRequest,
    Listener, Network, ReadingEvent, Simulation, SyncEvent, Vigil, VigilConfig,
};

use super::board::Board;
use super::script::{Script, label};
use super::service::DemoPatient;
use crate::Failure;

/// The listener of patient `index`'s phone.
struct PhoneListener {
    index: usize,
    board: Arc<Board>,
    /// Devices whose link is down, to report their return once.
    down: Mutex<HashSet<String>>,
}

impl Listener for PhoneListener {
    fn on_reading(&self, reading: ReadingEvent) {
        // Counted and timed only: a demo prints no reading values.
        self.board.decoded.fetch_add(1, Ordering::Relaxed);
        self.board.observe(self.index, reading.receive_time_ms);
    }

    fn on_alert(&self, alert: AlertEvent) {
        self.board.alert_raised(
            self.index,
            &alert.id,
            alert.kind.as_str(),
            &format!("{:?}", alert.phase).to_lowercase(),
            alert.time_ms,
        );
    }

    fn on_device_event(&self, event: DeviceEvent) {
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        let line = match event.kind {
            DeviceEventKind::Disconnected if down.insert(event.device.clone()) => {
                Some(format!("{} lost its link", event.device))
            }
            DeviceEventKind::Connected if down.remove(&event.device) => {
                Some(format!("{} is back in range", event.device))
            }
            DeviceEventKind::Failed => Some(format!("{} failed: {}", event.device, event.detail)),
            _ => None,
        };
        drop(down);
        if let Some(line) = line {
            // The event's own time: while a sensor is away no reading
            // moves the phone's clock as the board sees it.
            self.board.log_at(
                self.board.since_start(event.time_ms),
                &format!("{}: {line}", label(self.index)),
            );
        }
    }

    fn on_sync_event(&self, event: SyncEvent) {
        if event.kind == "unauthorized" {
            self.board
                .log_for(self.index, "the service refused the token");
        }
    }

    fn on_buffer_event(&self, event: BufferEvent) {
        if event.evicted > 0 {
            self.board.log_for(
                self.index,
                &format!("buffer full, {} readings evicted", event.evicted),
            );
        }
    }

    fn on_host_request(&self, _request: HostRequest) {}
}

/// What a phone needs from the demo.
pub struct Setup<'a> {
    /// Folder of the phones' buffer files.
    pub dir: &'a Path,
    /// The service.
    pub url: &'a str,
    /// The scripted events.
    pub script: &'a Script,
    /// Start of simulated time, Unix ms.
    pub start_ms: i64,
    /// Simulated seconds per wall second.
    pub factor: f64,
    /// Seed of the simulated devices.
    pub seed: u64,
}

/// Device names of patient `i`.
pub fn devices(i: usize) -> (String, String) {
    (format!("cgm-{:02}", i + 1), format!("strap-{:02}", i + 1))
}

/// Starts patient `index`'s phone: paired, online on Wi-Fi, collecting.
pub fn start(
    index: usize,
    patient: &DemoPatient,
    setup: &Setup<'_>,
    board: Arc<Board>,
) -> Result<Vigil, Failure> {
    let failed = |what: &'static str| {
        move |e: vigil_core::api::SdkError| Failure::Other(format!("{}: {what}: {e}", label(index)))
    };
    let mut config = VigilConfig::new(
        setup.dir.join(format!("phone-{:02}.db", index + 1)),
        patient.id.to_string(),
    );
    config.server_url = Some(setup.url.to_owned());
    config.token = Some(patient.device_token.clone());
    config.clock = ClockMode::Accelerated {
        start_ms: setup.start_ms,
        factor: setup.factor,
    };
    config.simulation_seed = setup
        .seed
        .wrapping_mul(1000)
        .wrapping_add(u64::try_from(index).unwrap_or(0));
    config.simulation = Some(Simulation {
        glucose: setup.script.glucose(index),
        cgm_out_of_range_ms: setup.script.out_of_range_ms(index, setup.start_ms),
        cgm_one_minute: false,
        ..Simulation::default()
    });
    let listener = Arc::new(PhoneListener {
        index,
        board,
        down: Mutex::new(HashSet::new()),
    });
    let vigil = Vigil::new(config, listener, None).map_err(failed("SDK"))?;
    let (cgm, strap) = devices(index);
    vigil.pair(&cgm, DeviceKind::Cgm).map_err(failed("pair"))?;
    if setup.script.has_strap(index) {
        vigil
            .pair(&strap, DeviceKind::HeartRate)
            .map_err(failed("pair"))?;
    }
    vigil.set_network(Network::Wifi);
    vigil.start().map_err(failed("start"))?;
    Ok(vigil)
}
