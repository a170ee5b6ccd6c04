//! One SDK facade (`vigil_core::api::Vigil`, what every app embeds) run on
//! simulated time to the end of its clock: the demo commands route their
//! readings through it, so session → alerts → buffer is wired in one place.
//!
//! The facade reports a session's end as a `stopped` (or `failed`) device
//! event; this waits for one per paired device, then closes the SDK, so
//! its buffer file is complete and free for the command to read.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use vigil_core::api::{
    AlertEvent, BufferEvent, DeviceEvent, DeviceEventKind, DeviceKind, HostRequest, Listener,
    ReadingEvent, SyncEvent, Vigil, VigilConfig,
};

use crate::Failure;

/// How long a simulated run may take on the wall clock: far beyond any
/// real run (two weeks take seconds), so only a hang reaches it.
const LONGEST_RUN: Duration = Duration::from_secs(3600);

/// Counts the sessions that ended and keeps the first failure, then hands
/// every callback on to the command's own listener.
struct Ends {
    inner: Arc<dyn Listener>,
    ended: Mutex<(usize, Option<String>)>,
    changed: Condvar,
}

impl Listener for Ends {
    fn on_reading(&self, r: ReadingEvent) {
        self.inner.on_reading(r);
    }
    fn on_alert(&self, a: AlertEvent) {
        self.inner.on_alert(a);
    }
    fn on_device_event(&self, e: DeviceEvent) {
        if matches!(e.kind, DeviceEventKind::Stopped | DeviceEventKind::Failed) {
            let mut ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
            ended.0 += 1;
            if e.kind == DeviceEventKind::Failed && ended.1.is_none() {
                ended.1 = Some(format!("{}: {}", e.device, e.detail));
            }
            self.changed.notify_all();
        }
        self.inner.on_device_event(e);
    }
    fn on_sync_event(&self, e: SyncEvent) {
        self.inner.on_sync_event(e);
    }
    fn on_buffer_event(&self, e: BufferEvent) {
        self.inner.on_buffer_event(e);
    }
    fn on_host_request(&self, r: HostRequest) {
        self.inner.on_host_request(r);
    }
}

/// Runs an SDK with `config` (a simulated clock that ends, simulated
/// devices), pairs and starts `devices`, and returns once every session
/// ended and the SDK is closed. `listener` hears everything the app would.
pub fn run_to_end(
    config: VigilConfig,
    devices: &[(&str, DeviceKind)],
    listener: Arc<dyn Listener>,
) -> Result<(), Failure> {
    let fail = |what: &'static str| move |e| Failure::Other(format!("{what}: {e}"));
    let ends = Arc::new(Ends {
        inner: listener,
        ended: Mutex::new((0, None)),
        changed: Condvar::new(),
    });
    let mut vigil = Vigil::new(config, ends.clone(), None).map_err(fail("SDK"))?;
    for (device, kind) in devices {
        vigil.pair(device, *kind).map_err(fail("pair"))?;
    }
    vigil.start().map_err(fail("start"))?;
    let ended = ends.ended.lock().unwrap_or_else(|p| p.into_inner());
    let (ended, timeout) = ends
        .changed
        .wait_timeout_while(ended, LONGEST_RUN, |(n, _)| *n < devices.len())
        .unwrap_or_else(|p| p.into_inner());
    let failure = ended.1.clone();
    drop(ended);
    vigil.close().map_err(fail("close"))?;
    if timeout.timed_out() {
        return Err(Failure::Other("the simulated run did not finish".into()));
    }
    match failure {
        Some(reason) => Err(Failure::Other(format!("session failed: {reason}"))),
        None => Ok(()),
    }
}
