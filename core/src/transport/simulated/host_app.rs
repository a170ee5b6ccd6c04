//! A stand-in for the phone app in front of the host-fed transport: it
//! takes the core's [`HostRequest`]s, performs them on a [`Radio`] of
//! simulated peripherals, and pushes what the "platform" reports back in,
//! exactly as a CoreBluetooth or `BluetoothGatt` delegate would.
//!
//! With it, the session fault suite runs unchanged over the host-fed
//! transport, and a bindings developer can read one complete, working host
//! loop.

use std::sync::Arc;
use std::time::Duration;

use super::Radio;
use crate::clock::Clock;
use crate::transport::TransportEvent;
use crate::transport::host_fed::{HostCommand, HostLink, HostReply, HostRequest};

/// Plays the app; see the module docs.
pub struct HostApp {
    radio: Radio,
    link: HostLink,
    clock: Arc<dyn Clock>,
    tick: Duration,
}

impl std::fmt::Debug for HostApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostApp")
            .field("radio", &self.radio)
            .finish_non_exhaustive()
    }
}

impl HostApp {
    /// An app serving `radio` through `link`, letting the peripherals run
    /// every `tick` of tokio time.
    pub fn new(radio: Radio, link: HostLink, clock: Arc<dyn Clock>, tick: Duration) -> Self {
        Self {
            radio,
            link,
            clock,
            tick,
        }
    }

    fn push(&self, events: Vec<TransportEvent>) {
        for e in events {
            match e {
                TransportEvent::Discovered(a) => self.link.discovered(a),
                TransportEvent::Connected(id) => self.link.connected(id),
                TransportEvent::Disconnected(id) => self.link.disconnected(id),
                TransportEvent::Value {
                    id,
                    characteristic,
                    value,
                } => self.link.value(id, characteristic, value),
            }
        }
    }

    fn handle(&mut self, req: HostRequest) {
        let now = self.clock.now();
        let r = &mut self.radio;
        let (reply, events) = match req.command {
            HostCommand::StartScan { services } => (Ok(HostReply::Done), r.scan(now, &services)),
            HostCommand::StopScan => (Ok(HostReply::Done), Vec::new()),
            HostCommand::Connect { id } => match r.connect(now, &id) {
                Ok(ev) => (Ok(HostReply::Done), ev),
                Err(e) => (Err(e), Vec::new()),
            },
            HostCommand::Disconnect { id } => match r.disconnect(now, &id) {
                Ok(ev) => (Ok(HostReply::Done), ev),
                Err(e) => (Err(e), Vec::new()),
            },
            HostCommand::Discover { id } => (
                r.discover(now, &id).map(HostReply::Characteristics),
                Vec::new(),
            ),
            HostCommand::Read { id, characteristic } => (
                r.read(now, &id, characteristic).map(HostReply::Value),
                Vec::new(),
            ),
            HostCommand::Write {
                id,
                characteristic,
                value,
                ..
            } => match r.write(now, &id, characteristic, &value) {
                Ok(ev) => (Ok(HostReply::Done), ev),
                Err(e) => (Err(e), Vec::new()),
            },
            HostCommand::Subscribe {
                id,
                characteristic,
                enable,
            } => (
                r.subscribe(now, &id, characteristic, enable)
                    .map(|()| HostReply::Done),
                Vec::new(),
            ),
        };
        let reply = reply.unwrap_or_else(|e| HostReply::Failed(e.to_string()));
        // Platform callbacks (didConnect, didUpdateValue) are delivered
        // before the completion that resumes the core, so the core never
        // sees an answer before the event it implies.
        self.push(events);
        // The core may have given up on the request (timeout); the app has
        // nothing to do about that.
        let _ = self.link.complete(req.token, reply);
    }

    /// Serves requests and ticks the peripherals until the transport is
    /// dropped.
    pub async fn run(mut self) {
        let mut interval = tokio::time::interval(self.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                req = self.link.next_request() => match req {
                    Some(req) => self.handle(req),
                    None => break,
                },
                _ = interval.tick() => {
                    let events = self.radio.tick(self.clock.now());
                    self.push(events);
                }
            }
        }
    }
}
