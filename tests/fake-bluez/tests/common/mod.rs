//! Test harness shared by the btleplug suites: one private system bus and
//! one emulated BlueZ per test, with every wait bounded.

#![allow(dead_code)]
// each test binary uses its own subset
// Test-only helpers: a failed expectation is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use vigil_core::clock::Clock;
use vigil_core::transport::{EventReceiver, TransportEvent};
use vigil_fake_bluez::{FakeBluez, PrivateBus};

/// Longest any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// btleplug finds BlueZ only through the process-wide
/// `DBUS_SYSTEM_BUS_ADDRESS`, and only one fake may own `org.bluez` on a
/// bus, so the tests of one binary run one at a time, each with its own
/// daemon brought up at the same address (libdbus reads the address once
/// per process).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A private bus with an emulated BlueZ on it, and the process pointed at
/// it. Dropping it kills the daemon.
pub struct Rig {
    pub fake: Arc<FakeBluez>,
    // Field order matters: the fake's connection closes before the bus dies.
    pub bus: PrivateBus,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Rig {
    /// A rig whose time moves only by `FakeBluez::advance_to`.
    pub async fn start(t0: DateTime<Utc>) -> Rig {
        let serial = SERIAL.lock().await;
        Self::start_inner(serial, t0, None).await
    }

    /// A rig whose devices live on the clock `make` builds (to share with
    /// a session). The clock is built once this test has the bus to itself,
    /// so a wall-time clock does not run while the test waits its turn.
    pub async fn start_with_clock(make: impl FnOnce() -> Arc<dyn Clock>) -> (Rig, Arc<dyn Clock>) {
        let serial = SERIAL.lock().await;
        let clock = make();
        let rig = Self::start_inner(serial, clock.now(), Some(clock.clone())).await;
        (rig, clock)
    }

    async fn start_inner(
        serial: tokio::sync::MutexGuard<'static, ()>,
        t0: DateTime<Utc>,
        clock: Option<Arc<dyn Clock>>,
    ) -> Rig {
        let dir = std::env::temp_dir().join(format!("vigil-fake-bluez-{}", std::process::id()));
        let bus =
            PrivateBus::start_in(dir).expect("private dbus-daemon (Debian package dbus-daemon)");
        // SAFETY: tests in this binary are serialised by SERIAL, and no
        // other thread reads the environment while this runs; btleplug reads
        // the variable when the transport is created, after this.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address());
        }
        let fake = match clock {
            Some(clock) => FakeBluez::serve_with_clock(bus.address(), clock).await,
            None => FakeBluez::serve(bus.address(), t0).await,
        }
        .expect("serve org.bluez on the private bus");
        let fake = Arc::new(fake);
        Rig {
            fake,
            bus,
            _serial: serial,
        }
    }
}

/// The next event, failing the test if none comes within [`WAIT`].
pub async fn next_event(rx: &mut EventReceiver) -> TransportEvent {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("an event within the time limit")
        .expect("the event channel stays open")
}

/// Skips events until one matches, failing the test after [`WAIT`].
pub async fn wait_for(
    rx: &mut EventReceiver,
    mut want: impl FnMut(&TransportEvent) -> bool,
) -> TransportEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            let e = rx.recv().await.expect("the event channel stays open");
            if want(&e) {
                return e;
            }
        }
    })
    .await
    .expect("the awaited event within the time limit")
}

/// Collects every event that arrives until `quiet` passes with none.
pub async fn drain(rx: &mut EventReceiver, quiet: Duration) -> Vec<TransportEvent> {
    let mut out = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(quiet, rx.recv()).await {
        out.push(e);
    }
    out
}
