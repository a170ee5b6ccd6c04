//! The host-fed transport: the app runs Bluetooth through the platform's
//! own stack (CoreBluetooth, `BluetoothGatt`) and the core only exchanges
//! messages with it.
//!
//! The core side is an ordinary [`Transport`], so the session state machine
//! is the same one the other transports drive. Every call becomes a
//! [`HostRequest`] the app takes from its [`HostLink`] (connect, read,
//! write the RACP or SOCP request the core
//! encoded, subscribe, ...) and answers with [`HostLink::complete`]; what
//! the platform reports unprompted (connected, disconnected, a
//! notification's bytes) the app pushes in with [`HostLink::connected`],
//! [`HostLink::disconnected`] and [`HostLink::value`].
//!
//! A request the app never answers fails after a timeout instead of
//! hanging the session, and an answer for an unknown or expired token is
//! refused with a typed error rather than ignored silently.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::{
    Advertisement, Characteristic, EventReceiver, GattUuid, PeripheralId, Transport,
    TransportEvent, WriteKind,
};
use crate::{Error, Result};

/// What the core asks the app's Bluetooth stack to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostCommand {
    /// Start scanning for these services (all when empty).
    StartScan {
        /// Service filter.
        services: Vec<GattUuid>,
    },
    /// Stop scanning.
    StopScan,
    /// Connect to a peripheral.
    Connect {
        /// Which.
        id: PeripheralId,
    },
    /// Disconnect from a peripheral.
    Disconnect {
        /// Which.
        id: PeripheralId,
    },
    /// Discover services and characteristics.
    Discover {
        /// Which.
        id: PeripheralId,
    },
    /// Read a characteristic.
    Read {
        /// Which peripheral.
        id: PeripheralId,
        /// Which characteristic.
        characteristic: GattUuid,
    },
    /// Write these exact bytes to a characteristic.
    Write {
        /// Which peripheral.
        id: PeripheralId,
        /// Which characteristic.
        characteristic: GattUuid,
        /// The bytes to write.
        value: Vec<u8>,
        /// With or without response.
        kind: WriteKind,
    },
    /// Enable (`true`) or disable notifications/indications.
    Subscribe {
        /// Which peripheral.
        id: PeripheralId,
        /// Which characteristic.
        characteristic: GattUuid,
        /// On or off.
        enable: bool,
    },
}

/// One request, with the token the answer must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRequest {
    /// Pass it back to [`HostLink::complete`].
    pub token: u64,
    /// What to do.
    pub command: HostCommand,
}

/// The app's answer to a [`HostRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostReply {
    /// Done (connect, disconnect, write, subscribe, scan).
    Done,
    /// The value read.
    Value(Vec<u8>),
    /// The characteristics discovered.
    Characteristics(Vec<Characteristic>),
    /// The platform refused or failed; the message is for logs.
    Failed(String),
}

struct Inner {
    requests: mpsc::UnboundedSender<HostRequest>,
    pending: Mutex<HashMap<u64, oneshot::Sender<HostReply>>>,
    next_token: AtomicU64,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<TransportEvent>>>,
}

impl Inner {
    fn publish(&self, event: TransportEvent) {
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain(|tx| tx.send(event.clone()).is_ok());
    }
}

/// The core's side: a [`Transport`] whose every call is a request to the
/// app.
pub struct HostFedTransport {
    inner: Arc<Inner>,
    timeout: Duration,
}

impl std::fmt::Debug for HostFedTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostFedTransport")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The app's side: take requests, answer them, push platform events.
pub struct HostLink {
    inner: Arc<Inner>,
    requests: mpsc::UnboundedReceiver<HostRequest>,
}

impl std::fmt::Debug for HostLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostLink").finish_non_exhaustive()
    }
}

impl HostFedTransport {
    /// A connected pair; a request unanswered for `timeout` (of tokio
    /// time) fails with [`Error::Device`].
    pub fn new(timeout: Duration) -> (Self, HostLink) {
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            requests: tx,
            pending: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
            subscribers: Mutex::new(Vec::new()),
        });
        (
            Self {
                inner: Arc::clone(&inner),
                timeout,
            },
            HostLink {
                inner,
                requests: rx,
            },
        )
    }

    async fn ask(&self, command: HostCommand) -> Result<HostReply> {
        let token = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token, tx);
        let what = format!("{command:?}");
        if self
            .inner
            .requests
            .send(HostRequest { token, command })
            .is_err()
        {
            self.forget(token);
            return Err(Error::Device("host link closed".into()));
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(HostReply::Failed(msg))) => Err(Error::Device(msg)),
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(Error::Device("host link closed".into())),
            Err(_) => {
                self.forget(token);
                Err(Error::Device(format!("host did not answer: {what}")))
            }
        }
    }

    fn forget(&self, token: u64) {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&token);
    }

    async fn done(&self, command: HostCommand) -> Result<()> {
        match self.ask(command).await? {
            HostReply::Done => Ok(()),
            other => Err(Error::Device(format!(
                "host answered {other:?}, expected Done"
            ))),
        }
    }
}

impl HostLink {
    /// The next request, waiting for one; `None` once the transport is
    /// gone.
    pub async fn next_request(&mut self) -> Option<HostRequest> {
        self.requests.recv().await
    }

    /// The next request if one is waiting (for hosts that poll).
    pub fn try_next_request(&mut self) -> Option<HostRequest> {
        self.requests.try_recv().ok()
    }

    /// Answers a request. Fails with [`Error::InvalidInput`] for a token
    /// that is unknown, already answered or timed out.
    pub fn complete(&self, token: u64, reply: HostReply) -> Result<()> {
        let tx = self
            .inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&token)
            .ok_or_else(|| Error::InvalidInput(format!("no pending host request {token}")))?;
        tx.send(reply)
            .map_err(|_| Error::InvalidInput(format!("host request {token} was abandoned")))
    }

    /// The platform saw a device while scanning.
    pub fn discovered(&self, advertisement: Advertisement) {
        self.inner
            .publish(TransportEvent::Discovered(advertisement));
    }

    /// The platform reports a link up.
    pub fn connected(&self, id: PeripheralId) {
        self.inner.publish(TransportEvent::Connected(id));
    }

    /// The platform reports a link down (any cause).
    pub fn disconnected(&self, id: PeripheralId) {
        self.inner.publish(TransportEvent::Disconnected(id));
    }

    /// A notification or indication arrived with these exact bytes.
    pub fn value(&self, id: PeripheralId, characteristic: GattUuid, value: Vec<u8>) {
        self.inner.publish(TransportEvent::Value {
            id,
            characteristic,
            value,
        });
    }
}

#[async_trait]
impl Transport for HostFedTransport {
    fn events(&self) -> EventReceiver {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

    async fn start_scan(&self, services: &[GattUuid]) -> Result<()> {
        self.done(HostCommand::StartScan {
            services: services.to_vec(),
        })
        .await
    }

    async fn stop_scan(&self) -> Result<()> {
        self.done(HostCommand::StopScan).await
    }

    async fn connect(&self, id: &PeripheralId) -> Result<()> {
        self.done(HostCommand::Connect { id: id.clone() }).await
    }

    async fn disconnect(&self, id: &PeripheralId) -> Result<()> {
        self.done(HostCommand::Disconnect { id: id.clone() }).await
    }

    async fn discover(&self, id: &PeripheralId) -> Result<Vec<Characteristic>> {
        match self.ask(HostCommand::Discover { id: id.clone() }).await? {
            HostReply::Characteristics(c) => Ok(c),
            other => Err(Error::Device(format!(
                "host answered {other:?}, expected characteristics"
            ))),
        }
    }

    async fn read(&self, id: &PeripheralId, characteristic: GattUuid) -> Result<Vec<u8>> {
        match self
            .ask(HostCommand::Read {
                id: id.clone(),
                characteristic,
            })
            .await?
        {
            HostReply::Value(v) => Ok(v),
            other => Err(Error::Device(format!(
                "host answered {other:?}, expected a value"
            ))),
        }
    }

    async fn write(
        &self,
        id: &PeripheralId,
        characteristic: GattUuid,
        value: &[u8],
        kind: WriteKind,
    ) -> Result<()> {
        self.done(HostCommand::Write {
            id: id.clone(),
            characteristic,
            value: value.to_vec(),
            kind,
        })
        .await
    }

    async fn subscribe(&self, id: &PeripheralId, characteristic: GattUuid) -> Result<()> {
        self.done(HostCommand::Subscribe {
            id: id.clone(),
            characteristic,
            enable: true,
        })
        .await
    }

    async fn unsubscribe(&self, id: &PeripheralId, characteristic: GattUuid) -> Result<()> {
        self.done(HostCommand::Subscribe {
            id: id.clone(),
            characteristic,
            enable: false,
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_read_is_a_request_the_app_answers_with_bytes() {
        let (t, mut link) = HostFedTransport::new(Duration::from_secs(5));
        let id = PeripheralId("dev".into());
        let ch = GattUuid::from_u16(0x2A19);
        let app = tokio::spawn(async move {
            let req = link.next_request().await.unwrap();
            assert_eq!(
                req.command,
                HostCommand::Read {
                    id: PeripheralId("dev".into()),
                    characteristic: GattUuid::from_u16(0x2A19)
                }
            );
            link.complete(req.token, HostReply::Value(vec![42]))
                .unwrap();
            // A second answer to the same token is refused.
            assert!(link.complete(req.token, HostReply::Done).is_err());
        });
        assert_eq!(t.read(&id, ch).await.unwrap(), vec![42]);
        app.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_request_times_out_with_a_device_error() {
        let (t, _link) = HostFedTransport::new(Duration::from_secs(5));
        let err = t.connect(&PeripheralId("dev".into())).await.unwrap_err();
        assert!(matches!(err, Error::Device(m) if m.contains("did not answer")));
    }

    #[tokio::test(start_paused = true)]
    async fn platform_events_reach_every_subscriber_in_order() {
        let (t, link) = HostFedTransport::new(Duration::from_secs(5));
        let mut a = t.events();
        let mut b = t.events();
        let id = PeripheralId("dev".into());
        link.connected(id.clone());
        link.value(id.clone(), GattUuid::from_u16(0x2AA7), vec![1, 2]);
        link.disconnected(id.clone());
        for rx in [&mut a, &mut b] {
            assert_eq!(rx.recv().await, Some(TransportEvent::Connected(id.clone())));
            assert!(matches!(
                rx.recv().await,
                Some(TransportEvent::Value { .. })
            ));
            assert_eq!(
                rx.recv().await,
                Some(TransportEvent::Disconnected(id.clone()))
            );
        }
    }
}
