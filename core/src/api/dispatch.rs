//! The callback thread: every listener call happens here, in order, off
//! the runtime's threads, so a slow or re-entrant app callback never stalls
//! a session and may call back into the SDK.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::events::{
    AlertEvent, BufferEvent, DeviceEvent, HostRequest, Listener, ReadingEvent, SyncEvent,
};

/// One listener call waiting for the callback thread.
#[derive(Debug)]
pub(crate) enum Callback {
    Reading(ReadingEvent),
    Alert(AlertEvent),
    Device(DeviceEvent),
    #[allow(dead_code)] // sent once the sync engine is built in (branch `sync`)
    Sync(SyncEvent),
    Buffer(BufferEvent),
    Host(HostRequest),
}

/// Sends callbacks to the callback thread; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Dispatch {
    tx: mpsc::Sender<Callback>,
}

impl Dispatch {
    /// Starts the callback thread. It ends once every `Dispatch` clone is
    /// dropped and the queue is drained.
    pub(crate) fn start(
        listener: Arc<dyn Listener>,
    ) -> std::io::Result<(Dispatch, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel::<Callback>();
        let thread = std::thread::Builder::new()
            .name("vigil-callbacks".into())
            .spawn(move || {
                for callback in rx {
                    // An app callback that panics must not take the SDK's
                    // callback thread down with it.
                    let _ = catch_unwind(AssertUnwindSafe(|| deliver(&*listener, callback)));
                }
            })?;
        Ok((Dispatch { tx }, thread))
    }

    /// Queues a callback; dropped silently when the SDK is shutting down.
    pub(crate) fn send(&self, callback: Callback) {
        let _ = self.tx.send(callback);
    }
}

fn deliver(listener: &dyn Listener, callback: Callback) {
    match callback {
        Callback::Reading(r) => listener.on_reading(r),
        Callback::Alert(a) => listener.on_alert(a),
        Callback::Device(d) => listener.on_device_event(d),
        Callback::Sync(s) => listener.on_sync_event(s),
        Callback::Buffer(b) => listener.on_buffer_event(b),
        Callback::Host(h) => listener.on_host_request(h),
    }
}
