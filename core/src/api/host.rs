//! The host-fed transport seen from the facade: requests go to the app's
//! listener, and the app's answers, link changes and notification bytes
//! come back through one channel to the task that owns the `HostLink`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::dispatch::{Callback, Dispatch};
use super::error::{SdkError, SdkResult};
use super::events::{HostReply, HostRequest};
use crate::transport::host_fed::{self, HostCommand, HostFedTransport};
use crate::transport::{Characteristic, GattUuid, PeripheralId, Properties, Transport};

/// How long the core waits for the app to answer one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

enum Input {
    Complete {
        token: u64,
        reply: host_fed::HostReply,
        done: oneshot::Sender<crate::Result<()>>,
    },
    Connection(PeripheralId, bool),
    Value(PeripheralId, GattUuid, Vec<u8>),
}

/// The app's handle on the host-fed transport.
pub(crate) struct HostBridge {
    input: mpsc::UnboundedSender<Input>,
}

impl HostBridge {
    /// Creates the transport and its pump task; call inside the runtime.
    pub(crate) fn start(dispatch: Dispatch) -> (Arc<dyn Transport>, HostBridge) {
        let (transport, mut link) = HostFedTransport::new(REQUEST_TIMEOUT);
        let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    request = link.next_request() => match request {
                        Some(r) => dispatch.send(Callback::Host(request_event(r))),
                        None => break,
                    },
                    input = rx.recv() => match input {
                        Some(Input::Complete { token, reply, done }) => {
                            let _ = done.send(link.complete(token, reply));
                        }
                        Some(Input::Connection(id, true)) => link.connected(id),
                        Some(Input::Connection(id, false)) => link.disconnected(id),
                        Some(Input::Value(id, uuid, bytes)) => link.value(id, uuid, bytes),
                        None => break,
                    },
                }
            }
        });
        (Arc::new(transport), HostBridge { input: tx })
    }

    pub(crate) fn value(&self, device: &str, uuid: GattUuid, bytes: Vec<u8>) {
        let _ = self
            .input
            .send(Input::Value(PeripheralId(device.to_string()), uuid, bytes));
    }

    pub(crate) fn connection(&self, device: &str, up: bool) {
        let _ = self
            .input
            .send(Input::Connection(PeripheralId(device.to_string()), up));
    }

    pub(crate) fn complete(&self, token: u64, reply: HostReply) -> SdkResult<()> {
        let reply = match reply {
            HostReply::Done => host_fed::HostReply::Done,
            HostReply::Value { value } => host_fed::HostReply::Value(value),
            HostReply::Failed { message } => host_fed::HostReply::Failed(message),
            HostReply::Characteristics {
                characteristics: cs,
            } => {
                let mut out = Vec::with_capacity(cs.len());
                for c in cs {
                    let p = c.properties;
                    out.push(Characteristic {
                        uuid: parse_uuid(&c.uuid)?,
                        service: parse_uuid(&c.service)?,
                        properties: Properties {
                            read: p & 0x02 != 0,
                            write_without_response: p & 0x04 != 0,
                            write: p & 0x08 != 0,
                            notify: p & 0x10 != 0,
                            indicate: p & 0x20 != 0,
                        },
                    });
                }
                host_fed::HostReply::Characteristics(out)
            }
        };
        let (done, wait) = oneshot::channel();
        self.input
            .send(Input::Complete { token, reply, done })
            .map_err(|_| SdkError::unavailable("the SDK is closed"))?;
        match wait.blocking_recv() {
            Ok(r) => r.map_err(SdkError::from),
            Err(_) => Err(SdkError::unavailable("the SDK is closed")),
        }
    }

    pub(crate) fn close(&self) {}
}

fn request_event(r: host_fed::HostRequest) -> HostRequest {
    let mut e = HostRequest {
        token: r.token,
        command: String::new(),
        device: None,
        characteristic: None,
        value: Vec::new(),
    };
    let command = match r.command {
        HostCommand::StartScan { .. } => "start_scan",
        HostCommand::StopScan => "stop_scan",
        HostCommand::Connect { id } => {
            e.device = Some(id.0);
            "connect"
        }
        HostCommand::Disconnect { id } => {
            e.device = Some(id.0);
            "disconnect"
        }
        HostCommand::Discover { id } => {
            e.device = Some(id.0);
            "discover"
        }
        HostCommand::Read { id, characteristic } => {
            e.device = Some(id.0);
            e.characteristic = Some(characteristic.to_string());
            "read"
        }
        HostCommand::Write {
            id,
            characteristic,
            value,
            ..
        } => {
            e.device = Some(id.0);
            e.characteristic = Some(characteristic.to_string());
            e.value = value;
            "write"
        }
        HostCommand::Subscribe {
            id,
            characteristic,
            enable,
        } => {
            e.device = Some(id.0);
            e.characteristic = Some(characteristic.to_string());
            if enable { "subscribe" } else { "unsubscribe" }
        }
    };
    e.command = command.to_string();
    e
}

/// Parses `2AA7`, `0x2AA7` or the 128-bit form
/// `00002aa7-0000-1000-8000-00805f9b34fb`.
pub(crate) fn parse_uuid(text: &str) -> SdkResult<GattUuid> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let bad = || SdkError::invalid("characteristic UUID must be 4 hex digits or the 128-bit form");
    if t.len() == 4 {
        let short = u16::from_str_radix(t, 16).map_err(|_| bad())?;
        return Ok(GattUuid::from_u16(short));
    }
    let hex: String = t.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || t.len() != 36 {
        return Err(bad());
    }
    u128::from_str_radix(&hex, 16)
        .map(GattUuid)
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_parse_in_short_and_long_forms() {
        let long = parse_uuid("00002AA7-0000-1000-8000-00805f9b34fb").unwrap();
        assert_eq!(parse_uuid("2aa7").unwrap(), long);
        assert_eq!(parse_uuid("0x2AA7").unwrap(), long);
        assert!(parse_uuid("2aa").is_err());
        assert!(parse_uuid("zzzz").is_err());
        assert!(parse_uuid("00002aa7000010008000-00805f9b34fb").is_err());
    }
}
